/**
 * A property included twice where the spec allows it once is a Protocol Error
 * ([MQTT-2.2.2-2], section 2.2.2.2). mqtt-packet 9 turns most repeats into an
 * array (properties.ts sees those), but one whose first value is falsy (two
 * Payload Format Indicator = 0, an empty Content Type, Message Expiry 0 …) is
 * overwritten by the next and looks single. So each properties section a v5
 * parser reads is walked again, with the parser's own readers, counting the
 * identifiers; a repeat marks the parsed object (REPEATED), which
 * checkProperties reports as 0x82. Only v5 packets have properties: 3.1.1
 * connections never reach this code.
 */
import { createRequire } from "node:module";

/** The name of the property a parsed properties object had twice (non-enumerable). */
export const REPEATED = Symbol("wasmq.repeatedProperty");

const constants = createRequire(import.meta.url)("mqtt-packet/constants") as {
  propertiesCodes: Record<number, string>;
  propertiesTypes: Record<string, string>;
};

/** The parts of mqtt-packet's Parser the walk uses: its position, its buffer list, its length reader. */
interface ParserInternals {
  _pos: number;
  _list: { length: number; readUInt8(offset: number): number; readUInt16BE(offset: number): number };
  _parseProperties(): Record<string, unknown> | false;
  _parseVarByteNum(): number | false;
}

/** Which identifiers may appear more than once in a client's packet: User Property only (the Subscription Identifier only server to client). */
const MULTIPLE = new Set(["userProperties"]);

/** Mark repeated single-value properties on everything `parser` parses from now on. */
export function detectRepeatedProperties(parser: object): void {
  const p = parser as ParserInternals;
  const parse = p._parseProperties;
  p._parseProperties = function (this: ParserInternals) {
    const start = this._pos;
    const result = parse.call(this);
    if (!result) return result;
    const end = this._pos;
    this._pos = start;
    let repeated: string | null = null;
    try {
      repeated = walk(this);
    } catch {
      // bounded reads should make this unreachable; a check must never take the parser (and the broker) down
    } finally {
      this._pos = end;
    }
    if (repeated !== null) Object.defineProperty(result, REPEATED, { value: repeated, enumerable: false });
    return result;
  };
}

/**
 * The first single-value property seen twice in the section at the parser's
 * position, or null. Values are skipped by their type's size, not decoded (this
 * runs on every v5 packet with properties). mqtt-packet's parse does not check
 * every length against the packet (a string running past it reads as null and
 * the parse goes on), so every read here is bounded by the section and the
 * buffer: a section that does not add up ends the walk (the packet is refused
 * elsewhere or was already mis-parsed), it never throws out of the parser.
 */
function walk(p: ParserInternals): string | null {
  const length = p._parseVarByteNum();
  if (length === false || length === 0) return null;
  const list = p._list;
  let pos = p._pos;
  const end = Math.min(pos + length, list.length);
  // identifiers are 0x01..0x2A: one bit each in two 32-bit words
  const seen = [0, 0];
  while (pos < end) {
    const id = list.readUInt8(pos++);
    const name = constants.propertiesCodes[id];
    if (!name) return null;
    if (!MULTIPLE.has(name)) {
      const word = id >>> 5;
      const bit = 1 << (id & 31);
      if (seen[word]! & bit) return name;
      seen[word]! |= bit;
    }
    const size = valueBytes(list, pos, end, constants.propertiesTypes[name]!);
    if (size < 0) return null;
    pos += size;
  }
  return null;
}

/** Bytes a property value of `type` takes at `pos` (mqtt-packet's property types); -1 when it runs past `end`. */
function valueBytes(list: ParserInternals["_list"], pos: number, end: number, type: string): number {
  const u16 = (at: number): number => (at + 2 <= end ? list.readUInt16BE(at) : -1);
  let n: number;
  switch (type) {
    case "byte":
    case "int8":
      n = 1;
      break;
    case "int16":
      n = 2;
      break;
    case "int32":
      n = 4;
      break;
    case "var":
      n = 1;
      while (n < 4 && pos + n - 1 < end && list.readUInt8(pos + n - 1) & 0x80) n++;
      break;
    case "pair": {
      const name = u16(pos);
      const value = name < 0 ? -1 : u16(pos + 2 + name);
      n = value < 0 ? -1 : 4 + name + value;
      break;
    }
    default: {
      // string, binary
      const len = u16(pos);
      n = len < 0 ? -1 : 2 + len;
    }
  }
  return n < 0 || pos + n > end ? -1 : n;
}
