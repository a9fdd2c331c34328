/**
 * The router keeps the levels of the topics it routes.
 *
 * aedes routes every message through mqemitter, whose matcher (qlobber)
 * splits the topic into its levels for each match: a fresh array and a string
 * per level, 6% of the broker's garbage per 64 B QoS 0 message
 * (bench/README.md "gc9"). Devices publish to the same topics over and over,
 * so the split is kept, with qlobber's own option for it (`cache_splits`:
 * the split arrays are only read, and qlobber clears the cache itself).
 * mqemitter builds its matcher without the option, so it is set on the
 * matcher of the broker's router (mqemitter-redis' too: it is an mqemitter).
 *
 * The cache drops the oldest topic when full: a fleet publishing to more
 * distinct topics than it holds splits as before, plus a Map insert and
 * delete per message.
 */

/** Topics whose levels are kept (~200 B each for a short topic). */
export const KEPT_TOPIC_SPLITS = 4096;

interface QlobberSplits {
  _split?: unknown;
  _split_cache?: Map<string, string[]>;
  _cache_splits?: number;
}

/** Keep the router's topic splits; false when the router is not the mqemitter/qlobber layout this was written for. */
export function keepTopicSplits(broker: object): boolean {
  const matcher = (broker as { mq?: { _matcher?: QlobberSplits } }).mq?._matcher;
  if (matcher === undefined || typeof matcher._split !== "function") return false;
  if (matcher._split_cache === undefined) {
    matcher._cache_splits = KEPT_TOPIC_SPLITS;
    matcher._split_cache = new Map();
  }
  return true;
}
