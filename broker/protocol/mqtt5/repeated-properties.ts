/**
 * A property included twice where the spec allows it once is a Protocol Error
 * ([MQTT-2.2.2-2], section 2.2.2.2). mqtt-packet 9 turns most repeats into an
 * array (properties.ts sees those), but one whose first value is falsy (two
 * Payload Format Indicator = 0, an empty Content Type, Message Expiry 0 …) is
 * overwritten by the next and looks single. So each properties section a v5
 * parser reads is walked again (sizes from mqtt-packet's own type table), counting the
 * identifiers; a repeat marks the parsed object (REPEATED), which
 * checkProperties reports as 0x82. Only v5 packets have properties: 3.1.1
 * connections never reach this code.
 *
 * The same walk notes where each User Property lies; when mqtt-packet's
 * grouped object would lose their order (a name repeated after another name),
 * the object is replaced by the ordered form (user-property-order.ts,
 * [MQTT-3.3.2-18]).
 */
import { createRequire } from "node:module";
import { mqttPacket } from "../mqtt.js";
import { orderedFromWire, UserPropertyOrder } from "./user-property-order.js";

/** The name of the property a parsed properties object had twice (non-enumerable). */
export const REPEATED = Symbol("wasmq.repeatedProperty");

const constants = createRequire(import.meta.url)("mqtt-packet/constants") as {
  propertiesCodes: Record<number, string>;
  propertiesTypes: Record<string, string>;
};

/** The parts of mqtt-packet's Parser the walk uses: its position, its buffer list, its length reader. */
interface ParserInternals {
  _pos: number;
  _list: { length: number; slice(start: number, end: number): Buffer };
  _parseProperties(): Record<string, unknown> | false;
  _parseVarByteNum(): number | false;
}

/** Per property identifier: how its value is sized (0: unknown identifier), from mqtt-packet's own tables. */
const Size = { unknown: 0, one: 1, two: 2, four: 3, varint: 4, prefixed: 5, pair: 6 } as const;
const SIZE_BY_TYPE: Record<string, number> = { byte: Size.one, int8: Size.one, int16: Size.two, int32: Size.four, var: Size.varint, string: Size.prefixed, binary: Size.prefixed, pair: Size.pair };
const SIZE_BY_ID = new Uint8Array(256);
const NAME_BY_ID: string[] = [];
for (const [id, name] of Object.entries(constants.propertiesCodes)) {
  SIZE_BY_ID[Number(id)] = SIZE_BY_TYPE[constants.propertiesTypes[name]!] ?? Size.unknown;
  NAME_BY_ID[Number(id)] = name;
}
/** User Property (0x26) is the one a client's packet may repeat (the Subscription Identifier only server to client). */
const USER_PROPERTY = 0x26;
/** Where the walk notes the User Properties of the section (one per process: parsing is synchronous). */
const order = new UserPropertyOrder();

/** Mark repeated single-value properties on everything `parser` parses from now on (and keep user properties in wire order). */
export function detectRepeatedProperties(parser: object): void {
  scanProperties(parser, true);
}

/**
 * Keep user properties in wire order on everything `parser` parses from now
 * on, marking nothing: for a parser of messages the broker receives from
 * elsewhere (a bridge's upstream connection).
 */
export function keepUserPropertyOrder(parser: object): void {
  scanProperties(parser, false);
}

/**
 * Run `connect` (mqtt.js' `client.connect()`, which creates its parser with
 * mqtt-packet's `parser()` synchronously) so that the parser it creates keeps
 * user properties in wire order. mqtt.js offers no other way to its parser.
 */
export function connectKeepingOrder(connect: () => void): void {
  const module = mqttPacket as unknown as { parser(opts?: object): object };
  const parser = module.parser;
  module.parser = function orderedParser(opts?: object) {
    const created = parser.call(module, opts);
    keepUserPropertyOrder(created);
    return created;
  };
  try {
    connect();
  } finally {
    module.parser = parser;
  }
}

type ParseProperties = ParserInternals["_parseProperties"];

/**
 * The scanning version of a parser's `_parseProperties`, one per original
 * (mqtt-packet's prototype method) and mode, shared by every parser: a
 * closure per connection would stay alive with every idle client (bench:
 * idle19k-conns). A parser already scanning keeps its version.
 */
const scanning = { marking: new WeakMap<ParseProperties, ParseProperties>(), ordering: new WeakMap<ParseProperties, ParseProperties>() };

function scanProperties(parser: object, markRepeated: boolean): void {
  const p = parser as ParserInternals;
  p._parseProperties = scanningVersionOf(p._parseProperties, markRepeated);
}

function scanningVersionOf(parse: ParseProperties, markRepeated: boolean): ParseProperties {
  const cache = markRepeated ? scanning.marking : scanning.ordering;
  let f = cache.get(parse);
  if (f !== undefined) return f;
  f = function parsePropertiesScanned(this: ParserInternals) {
    const start = this._pos;
    const result = parse.call(this);
    if (!result) return result;
    const end = this._pos;
    this._pos = start;
    let repeated: string | null = null;
    try {
      repeated = walk(this);
      // only a whole, well-formed section is re-read in order; anything else is refused elsewhere
      if (repeated === null && order.interleaved && order.complete) result.userProperties = orderedFromWire(order);
    } catch {
      // bounded reads should make this unreachable; a check must never take the parser (and the broker) down
    } finally {
      if (order.section !== null) order.release();
      this._pos = end;
    }
    if (repeated !== null && markRepeated) Object.defineProperty(result, REPEATED, { value: repeated, enumerable: false });
    return result;
  };
  cache.set(parse, f);
  cache.set(f, f); // applied twice: still one scan
  return f;
}

/**
 * The first single-value property seen twice in the section at the parser's
 * position, or null. Values are skipped by their type's size, not decoded (this
 * runs on every v5 packet with properties), over one contiguous view of the
 * section. mqtt-packet's parse does not check every length against the packet
 * (a string running past it reads as null and the parse goes on), so every
 * read is bounded by the section: a section that does not add up ends the walk
 * (the packet is refused elsewhere or was already mis-parsed); it never throws.
 */
function walk(p: ParserInternals): string | null {
  const length = p._parseVarByteNum();
  if (length === false || length === 0) return null;
  const start = p._pos;
  const end = Math.min(start + length, p._list.length);
  if (end <= start) return null;
  const b = p._list.slice(start, end);
  const n = b.length;
  order.reset();
  order.section = b;
  // identifiers are 0x01..0x2A: one bit each in two 32-bit words
  let low = 0;
  let high = 0;
  let pos = 0;
  while (pos < n) {
    const id = b[pos++]!;
    const size = SIZE_BY_ID[id]!;
    if (size === Size.unknown) return null;
    if (id !== USER_PROPERTY) {
      const bit = 1 << (id & 31);
      if (id < 32) {
        if (low & bit) return NAME_BY_ID[id]!;
        low |= bit;
      } else {
        if (high & bit) return NAME_BY_ID[id]!;
        high |= bit;
      }
    }
    let skip: number;
    switch (size) {
      case Size.one:
        skip = 1;
        break;
      case Size.two:
        skip = 2;
        break;
      case Size.four:
        skip = 4;
        break;
      case Size.varint:
        skip = 1;
        while (skip < 4 && pos + skip - 1 < n && b[pos + skip - 1]! & 0x80) skip++;
        break;
      case Size.prefixed:
        if (pos + 2 > n) return null;
        skip = 2 + ((b[pos]! << 8) | b[pos + 1]!);
        break;
      default: {
        // pair: two prefixed strings
        if (pos + 2 > n) return null;
        const name = 2 + ((b[pos]! << 8) | b[pos + 1]!);
        if (pos + name + 2 > n) return null;
        skip = name + 2 + ((b[pos + name]! << 8) | b[pos + name + 1]!);
        if (id === USER_PROPERTY && pos + skip <= n) order.see(pos + 2, name - 2, pos + name + 2, skip - name - 2);
      }
    }
    pos += skip;
  }
  order.complete = pos === n;
  return null;
}
