/**
 * User properties in the order the publisher sent them ([MQTT-3.3.2-17]
 * forwarded unaltered, [MQTT-3.3.2-18] "The Server MUST maintain the order of
 * User Properties when forwarding the Application Message"; the same holds for
 * a will's properties, [MQTT-3.1.3-10]).
 *
 * `properties.userProperties` on a packet has one of two forms, and
 * mqtt-packet writes both:
 *  - grouped, `{ name: value | [values] }`: what mqtt-packet's parser makes.
 *    Written in key order, each name's values together; that is the wire order
 *    when every name's entries were adjacent and no name is an array index
 *    ("0", "7", … which JavaScript objects list first, in numeric order);
 *  - ordered, `[{ name: value }, …]`: one single-entry object per property,
 *    in wire order. mqtt-packet writes an array-valued property entry by
 *    entry, so it goes out in this order, and msgpack (LMDB, Redis), JSON and
 *    structured clones keep it as it is.
 * The ordered form is made only where the grouped one would lose the order
 * (repeated-properties.ts decides from the bytes of a parsed packet; a
 * plugin's edit and a bridge's stored list through `userPropertiesValue`), so
 * the common cases keep mqtt-packet's object and cost nothing.
 */

/** A user property: name and value (host/ names it UserProperty). */
export type UserPropertyPair = readonly [string, string];
export type GroupedUserProperties = Record<string, string | string[]>;
export type OrderedUserProperties = Array<Record<string, string>>;

/** Whether `name` is a canonical array index, which objects list before other keys (ECMAScript OrdinaryOwnPropertyKeys). */
export function isArrayIndex(name: string): boolean {
  const n = name.length;
  if (n === 0 || n > 10) return false;
  if (n > 1 && name.charCodeAt(0) === 48 /* 0 */) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return Number(name) < 0xffff_ffff;
}

/** The user properties of either form as a list of pairs, in the order they are written. */
export function userPropertyList(value: unknown): [string, string][] {
  const list: [string, string][] = [];
  if (value === null || typeof value !== "object") return list;
  if (Array.isArray(value)) {
    for (const entry of value as unknown[]) {
      if (entry === null || typeof entry !== "object") continue;
      for (const name of Object.keys(entry)) pushValues(list, name, (entry as Record<string, unknown>)[name]);
    }
    return list;
  }
  for (const name of Object.keys(value)) pushValues(list, name, (value as Record<string, unknown>)[name]);
  return list;
}

function pushValues(list: [string, string][], name: string, v: unknown): void {
  if (Array.isArray(v)) for (const x of v) list.push([name, String(x)]);
  else if (v !== undefined && v !== null) list.push([name, String(v)]);
}

/** The first value of the user property `name`, in either form. */
export function userPropertyValue(value: unknown, name: string): string | undefined {
  for (const [n, v] of userPropertyList(value)) if (n === name) return v;
  return undefined;
}

/**
 * Whether the grouped form of `list` writes it back in the same order:
 * every name's entries adjacent, array-index names first and ascending.
 */
export function groupedKeepsOrder(list: readonly UserPropertyPair[]): boolean {
  let lastIndex = -1;
  let sawOther = false;
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const name = list[i]![0];
    if (i > 0 && list[i - 1]![0] === name) continue;
    if (seen.has(name)) return false;
    seen.add(name);
    if (isArrayIndex(name)) {
      const n = Number(name);
      if (sawOther || n < lastIndex) return false;
      lastIndex = n;
    } else sawOther = true;
  }
  return true;
}

/** `list` in the ordered form: one single-entry object per property. */
export function orderedForm(list: readonly UserPropertyPair[]): OrderedUserProperties {
  // a computed key defines an own property, "__proto__" included (only a literal `__proto__:` sets the prototype)
  return list.map(([name, value]) => ({ [name]: value }));
}

/** `list` as `properties.userProperties`: grouped when that keeps the order, else ordered; undefined when empty. */
export function userPropertiesValue(list: readonly UserPropertyPair[]): GroupedUserProperties | OrderedUserProperties | undefined {
  if (list.length === 0) return undefined;
  if (!groupedKeepsOrder(list)) return orderedForm(list);
  const out: GroupedUserProperties = {};
  for (const [name, value] of list) {
    const had = Object.prototype.hasOwnProperty.call(out, name) ? out[name] : undefined;
    const next = had === undefined ? value : Array.isArray(had) ? (had.push(value), had) : [had, value];
    Object.defineProperty(out, name, { value: next, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
