/**
 * The wire order of a properties section's User Properties, noted while
 * repeated-properties.ts walks the section (it runs on every v5 packet with
 * properties a client sends: CONNECT, its will, PUBLISH, SUBSCRIBE, …).
 *
 * mqtt-packet's parser groups user properties by name (`a=1, b=2, a=3`
 * becomes `{a: ['1','3'], b: '2'}`), which writes back as `a=1, a=3, b=2`.
 * [MQTT-3.3.2-18] the order must be kept, so when — and only when — the
 * grouped object would not write the wire order back, the parsed object is
 * replaced by the ordered form (user-properties.ts), decoded from the bytes.
 *
 * The check is made on the bytes, without decoding or allocating: a name
 * differing from the previous one is compared with the names before it (a
 * match means interleaved), and a new array-index name ("0", "42": objects
 * list those first, ascending) out of that order counts as interleaved too.
 * Past MAX_COMPARED properties the pairwise check stops and the ordered form
 * is made anyway (correct, just not free).
 */
import { orderedForm, type OrderedUserProperties } from "./user-properties.js";

/** Properties whose names are compared pairwise; more than this many are re-read in order without checking. */
const MAX_COMPARED = 64;
/** Scratch entries kept between packets (4 per property). */
const KEPT_OFFSETS = 4 * 256;

export class UserPropertyOrder {
  /** The section being walked (a view of the parser's bytes, dropped by release). */
  section: Buffer | null = null;
  /** The walk reached the end of the section exactly. */
  complete = false;
  /** The grouped object would not write the entries back in this order. */
  interleaved = false;
  /** Entries noted: name start, name length, value start, value length (offsets into `section`). */
  count = 0;
  offsets = new Uint32Array(4 * 8);
  private lastIndex = -1;
  private sawOther = false;

  reset(): void {
    this.complete = false;
    this.interleaved = false;
    this.count = 0;
    this.lastIndex = -1;
    this.sawOther = false;
  }

  /** Forget the bytes (the section may be a view of a large packet) and what was found in them. */
  release(): void {
    this.section = null;
    this.complete = false;
    this.interleaved = false;
    // a packet with thousands of user properties does not keep its scratch space for good
    if (this.offsets.length > KEPT_OFFSETS) this.offsets = new Uint32Array(4 * 8);
  }

  /** One User Property at these offsets of `section`. */
  see(nameStart: number, nameLength: number, valueStart: number, valueLength: number): void {
    const i = this.count++;
    if (4 * this.count > this.offsets.length) {
      const grown = new Uint32Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    const o = this.offsets;
    o[4 * i] = nameStart;
    o[4 * i + 1] = nameLength;
    o[4 * i + 2] = valueStart;
    o[4 * i + 3] = valueLength;
    if (this.interleaved) return;
    if (i === 0) return this.noteNewName(nameStart, nameLength);
    if (this.count > MAX_COMPARED) {
      this.interleaved = true;
      return;
    }
    if (this.sameName(i, i - 1)) return;
    for (let j = 0; j < i - 1; j++) {
      if (this.sameName(i, j)) {
        this.interleaved = true;
        return;
      }
    }
    this.noteNewName(nameStart, nameLength);
  }

  /** A name not seen before in this section: array-index names must come first, ascending. */
  private noteNewName(start: number, length: number): void {
    const index = arrayIndexAt(this.section!, start, length);
    if (index < 0) this.sawOther = true;
    else if (this.sawOther || index < this.lastIndex) this.interleaved = true;
    else this.lastIndex = index;
  }

  private sameName(i: number, j: number): boolean {
    const o = this.offsets;
    const length = o[4 * i + 1]!;
    if (o[4 * j + 1] !== length) return false;
    const b = this.section!;
    const a = o[4 * i]!;
    const c = o[4 * j]!;
    for (let k = 0; k < length; k++) if (b[a + k] !== b[c + k]) return false;
    return true;
  }
}

/** The array index spelled by these bytes (canonical decimal below 2^32 - 1), or -1. */
function arrayIndexAt(b: Buffer, start: number, length: number): number {
  if (length === 0 || length > 10) return -1;
  if (length > 1 && b[start] === 48 /* 0 */) return -1;
  let n = 0;
  for (let k = 0; k < length; k++) {
    const c = b[start + k]!;
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n < 0xffff_ffff ? n : -1;
}

/** The noted User Properties in wire order, decoded as mqtt-packet decodes strings (UTF-8). */
export function orderedFromWire(order: UserPropertyOrder): OrderedUserProperties {
  const b = order.section!;
  const o = order.offsets;
  const list: [string, string][] = [];
  for (let i = 0; i < order.count; i++) {
    const ns = o[4 * i]!;
    const vs = o[4 * i + 2]!;
    list.push([b.toString("utf8", ns, ns + o[4 * i + 1]!), b.toString("utf8", vs, vs + o[4 * i + 3]!)]);
  }
  return orderedForm(list);
}
