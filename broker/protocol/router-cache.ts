/**
 * The router keeps what it worked out for the topics it routes.
 *
 * aedes routes every message through mqemitter, whose matcher (qlobber)
 * splits the topic into levels and walks its trie for each message: a split
 * array, a result array and a state object with a property added later, ~12%
 * of the broker's garbage per 64 B QoS 0 message (bench/README.md "gc9").
 * Devices publish to the same topics over and over, so:
 * - the split is kept, with qlobber's own option for it (`cache_splits`; the
 *   split arrays are only read, and qlobber clears that cache itself);
 * - the result is kept per topic until the next subscription change (any
 *   add, remove or clear empties it). qlobber already hands back the trie's
 *   own list when one list matches, so callers never change what they get;
 *   a kept result is that same list, or the union qlobber built.
 * mqemitter builds its matcher without either, so both are set on the matcher
 * of the broker's router (mqemitter-redis' too: it is an mqemitter).
 *
 * Both drop their oldest topic when full: a fleet publishing to more distinct
 * topics than they hold works as before, plus a Map insert and delete per
 * message.
 */

/** Topics whose levels and matches are kept (~0.3 KB each for a short topic and one subscriber list). */
export const KEPT_TOPICS = 4096;

interface Qlobber {
  _split?: unknown;
  _split_cache?: Map<string, string[]>;
  _cache_splits?: number;
  match(topic: string, ctx?: unknown): unknown[];
  add(topic: string, value: unknown): unknown;
  remove(topic: string, value?: unknown): unknown;
  clear(): unknown;
}

const cached = new WeakSet<object>();

/** Keep the router's topic splits and matches; false when the router is not the mqemitter/qlobber layout this was written for. */
export function cacheRouting(broker: object): boolean {
  const matcher = (broker as { mq?: { _matcher?: Qlobber } }).mq?._matcher;
  if (matcher === undefined || typeof matcher._split !== "function" || typeof matcher.match !== "function") return false;
  if (cached.has(matcher)) return true;
  cached.add(matcher);
  if (matcher._split_cache === undefined) {
    matcher._cache_splits = KEPT_TOPICS;
    matcher._split_cache = new Map();
  }
  const matches = new Map<string, unknown[]>();
  const { match, add, remove, clear } = matcher;
  matcher.match = function keptMatch(this: Qlobber, topic: string, ctx?: unknown): unknown[] {
    if (ctx !== undefined) return match.call(this, topic, ctx); // (a context changes what matches)
    let found = matches.get(topic);
    if (found === undefined) {
      found = match.call(this, topic);
      matches.set(topic, found);
      if (matches.size > KEPT_TOPICS) matches.delete(matches.keys().next().value!);
    }
    return found;
  };
  matcher.add = function (this: Qlobber, topic: string, value: unknown) {
    matches.clear();
    return add.call(this, topic, value);
  };
  matcher.remove = function (this: Qlobber, topic: string, value?: unknown) {
    matches.clear();
    return remove.call(this, topic, value);
  };
  matcher.clear = function (this: Qlobber) {
    matches.clear();
    return clear.call(this);
  };
  return true;
}
