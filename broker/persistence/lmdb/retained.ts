/** Retained messages: one record per topic, with an optional expiry (and its TTL index entry). */
import { Readable } from "node:stream";
import { QlobberTrue, type StoredPacket } from "./aedes-parts.js";
import { noop, type StoreContext } from "./environment.js";
import { getRetainedExpiry } from "./expiry.js";
import { literalPrefix, MAX_RETAINED_TOPIC_KEY, payloadLength, plainPacket, prefixEnd, QLOBBER_OPTIONS, topicKeyPart, ttlKey, type RetainedRecord } from "./keys.js";

export class RetainedStore {
  constructor(private readonly ctx: StoreContext) {}


  async storeRetained(pkt: StoredPacket): Promise<void> {
    this.ctx.live();
    const packet = plainPacket(pkt);
    const key = topicKeyPart(String(packet.topic), MAX_RETAINED_TOPIC_KEY);
    const { retained, retainedTtl } = this.ctx.dbs;
    const writes: Array<Promise<unknown>> = [];
    // (reads see committed data only; a stale TTL index entry left by a racing
    // uncommitted write is harmless: the sweep checks the record's own expiry)
    const old = retained.get(key);
    if (old?.e !== undefined) writes.push(retainedTtl.remove(ttlKey(old.e, key)));
    if (payloadLength(packet.payload) === 0) {
      // unconditional: a put of this topic may be queued but not yet committed
      writes.push(retained.remove(key));
    } else {
      const e = getRetainedExpiry(pkt);
      const record: RetainedRecord = e === undefined ? { p: packet } : { p: packet, e };
      writes.push(retained.put(key, record));
      if (e !== undefined) writes.push(retainedTtl.put(ttlKey(e, key), 1));
    }
    await this.ctx.settle(writes);
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    if (this.ctx.destroyed) return Readable.from([]);
    const self = this;
    return Readable.from(
      (function* () {
        if (self.ctx.destroyed) return;
        yield* self.#matchRetained(patterns, Date.now());
      })(),
    );
  }

  /** False only when no live retained message matches any pattern: the lookup the stream makes, synchronous (expired matches are purged, as the stream does). */
  mayHaveRetained(patterns: string[]): boolean {
    if (this.ctx.destroyed) return false;
    return this.#matchRetained(patterns, Date.now(), true).length > 0;
  }

  /** All live retained packets matching any pattern, each once (with `firstOnly`, at most one: the scan stops at the first). */
  #matchRetained(patterns: string[], now: number, firstOnly = false): StoredPacket[] {
    const { retained } = this.ctx.dbs;
    // [MQTT-4.7.2-1]: a filter whose first level is a wildcard does not match
    // topics starting with "$"; "$SYS/#" (literal first level) still does.
    const literalFirst = new QlobberTrue(QLOBBER_OPTIONS);
    const wildcardFirst = new QlobberTrue(QLOBBER_OPTIONS);
    let anyLiteralFirst = false;
    let anyWildcardFirst = false;
    const exact: string[] = [];
    const prefixes: string[] = [];
    for (const pattern of patterns) {
      if (typeof pattern !== "string" || pattern.length === 0) continue;
      const { exact: isExact, wildcardFirst: wild, prefix } = literalPrefix(pattern);
      if (isExact) {
        exact.push(pattern);
      } else if (wild) {
        wildcardFirst.add(pattern);
        anyWildcardFirst = true;
      } else {
        literalFirst.add(pattern);
        anyLiteralFirst = true;
        prefixes.push(prefix);
      }
    }
    const matches = (topic: string) =>
      (anyLiteralFirst && literalFirst.test(topic)) ||
      (anyWildcardFirst && topic.charCodeAt(0) !== 36 /* $ */ && wildcardFirst.test(topic));
    const out: StoredPacket[] = [];
    const seen = new Set<string>();
    const expired: Array<{ key: Buffer; e: number }> = [];
    const consider = (key: Buffer, rec: RetainedRecord | undefined, viaWildcard: boolean) => {
      if (!rec || !rec.p) return;
      const topic = String(rec.p.topic);
      if (seen.has(topic)) return;
      if (viaWildcard && !matches(topic)) return;
      if (rec.e !== undefined && rec.e <= now) {
        expired.push({ key: Buffer.from(key), e: rec.e });
        return;
      }
      seen.add(topic);
      out.push(rec.p);
    };
    for (const topic of exact) {
      const key = topicKeyPart(topic, MAX_RETAINED_TOPIC_KEY);
      consider(key, retained.get(key), false);
      if (firstOnly && out.length > 0) break;
    }
    if ((anyLiteralFirst || anyWildcardFirst) && !(firstOnly && out.length > 0)) {
      const ranges: Array<{ start?: Buffer; end?: Buffer }> = [];
      if (anyWildcardFirst) ranges.push({});
      else {
        // drop prefixes covered by a shorter one, then scan each plus the hashed-long-topic range
        prefixes.sort();
        let last: string | undefined;
        for (const p of prefixes) {
          if (last !== undefined && p.startsWith(last)) continue;
          last = p;
          const start = Buffer.from(p, "utf8");
          ranges.push({ start, end: prefixEnd(start) });
        }
        ranges.push({ start: Buffer.from([0]), end: Buffer.from([1]) });
      }
      scan: for (const range of ranges) {
        // test plain (topic-valued) keys before decoding their records
        for (const k of retained.getKeys(range)) {
          const u8 = k as Uint8Array;
          const key = Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
          if (key[0] !== 0) {
            const topic = key.toString("utf8");
            if (seen.has(topic) || !matches(topic)) continue;
          }
          consider(key, retained.get(key), key[0] === 0);
          if (firstOnly && out.length > 0) break scan;
        }
      }
    }
    if (expired.length > 0) this.#purgeRetained(expired);
    return out;
  }

  #purgeRetained(entries: Array<{ key: Buffer; e: number }>): void {
    if (this.ctx.destroyed) return;
    const { root, retained, retainedTtl } = this.ctx.dbs;
    root
      .transaction(() => {
        for (const { key, e } of entries) {
          const rec = retained.get(key);
          if (rec && rec.e === e) retained.remove(key);
          retainedTtl.remove(ttlKey(e, key));
        }
      })
      .catch(noop);
  }
}
