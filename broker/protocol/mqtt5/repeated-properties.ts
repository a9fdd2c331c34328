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

/** The parts of mqtt-packet's Parser the walk uses (its own readers, so types and lengths are decoded as it does). */
interface ParserInternals {
  _pos: number;
  _parseProperties(): Record<string, unknown> | false;
  _parseVarByteNum(): number | false;
  _parseByte(): number;
  _parseByType(type: string): unknown;
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
    const repeated = walk(this);
    this._pos = end;
    if (repeated !== null) Object.defineProperty(result, REPEATED, { value: repeated, enumerable: false });
    return result;
  };
}

/** The first single-value property seen twice in the section at the parser's position, or null. */
function walk(p: ParserInternals): string | null {
  const length = p._parseVarByteNum();
  if (length === false) return null;
  const end = p._pos + length;
  const seen = new Set<string>();
  while (p._pos < end) {
    const name = constants.propertiesCodes[p._parseByte()];
    if (!name) return null; // the parse above already refused it
    if (seen.has(name) && !MULTIPLE.has(name)) return name;
    seen.add(name);
    p._parseByType(constants.propertiesTypes[name]!);
  }
  return null;
}
