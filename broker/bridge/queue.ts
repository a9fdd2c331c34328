/**
 * The durable outbound queue of one bridge: every message bound for the
 * upstream is written here (LMDB, in the broker's own environment) before the
 * local publisher is acknowledged, and removed only when the upstream
 * acknowledges it. Entries are numbered by a sequence that only grows, so the
 * drain sends them in the order they were accepted (per topic order included),
 * and after a reconnect or a restart it starts again from the oldest one.
 *
 * Storage: one named sub-database "bridges" shared by every bridge, keyed
 * [bridgeName, seq] (lmdb-js orders array keys element by element, so one
 * bridge's entries are one contiguous, ordered range). A second key per bridge,
 * [bridgeName, "sent"], records how far the drain got, so messages that may
 * already have reached the upstream before a crash go out again with DUP set.
 * [bridgeName, "rel", seq] marks a QoS 2 message whose PUBREC arrived: it is
 * written (and, with durability "sync", flushed) before PUBREL goes out, and
 * after a reconnect or restart such a message is resumed with PUBREL, never
 * sent again as a PUBLISH ([MQTT-4.4.0-1], [MQTT-4.3.3-*]; see qos2.ts).
 *
 * Record format: version 1 (no `v`) is topic, payload, QoS, retain, time;
 * version 2 (`v: 2`) adds the MQTT 5 properties that cross (`x`) and the
 * message expiry deadline (`e`). Both are read, so an older queue still drains.
 *
 * Memory holds only the order and sizes of entries (12 bytes or so each);
 * payloads are read back from LMDB when sent. In `persistence: "memory"` mode
 * the queue lives in memory and a restart loses it (documented).
 */
import type { Database, RootDatabase } from "lmdb";
import { GroupCommit } from "../persistence/lmdb/group-commit.js";
import { fromStored, toStored, type CrossingProperties, type StoredProperties } from "./properties.js";

export interface QueuedMessage {
  seq: number;
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Epoch ms when the message was queued. */
  at: number;
  /** It may have been sent before (a resend after reconnect or restart): DUP. */
  dup: boolean;
  /** MQTT 5 properties that cross (v5 publisher); undefined for a plain message. */
  properties?: CrossingProperties;
  /** Epoch ms when the message expires (its Message Expiry Interval counted from arrival). */
  expiresAt?: number;
}

/** What a message brings besides topic, payload, QoS and retain. */
export interface MessageExtras {
  properties?: CrossingProperties | undefined;
  expiresAt?: number | undefined;
}

interface StoredRecord {
  /** Format version: absent = 1, 2 = with `x` and `e`. */
  v?: 2;
  t: string;
  p: Uint8Array;
  q: number;
  r: boolean;
  a: number;
  x?: StoredProperties;
  e?: number;
}

interface Backend {
  entries(): Iterable<{ seq: number; rec: StoredRecord }>;
  put(seq: number, rec: StoredRecord): Promise<void>;
  get(seq: number): StoredRecord | undefined;
  remove(seq: number): void;
  sentMark(): number;
  setSentMark(seq: number): void;
  /** Sequence numbers marked PUBREC-received. */
  releasedSeqs(): number[];
  putReleased(seq: number): Promise<void>;
  removeReleased(seq: number): void;
}

/** [bridge, seq] an entry, [bridge, "sent"] the drain's mark, [bridge, "rel", seq] a PUBREC received. */
type QueueKey = [string, number | string] | [string, "rel", number];

class LmdbBackend implements Backend {
  private readonly db: Database<StoredRecord | number, QueueKey>;
  /**
   * When a write is on disk: the flush of the batch the write joined, taken in
   * the same synchronous run as the write (see group-commit.ts). Waiting for
   * `root.flushed` after the commit, as before, waited under load for a later
   * batch's flush: one more commit + fdatasync per message. Completions come
   * in issue order, so the local publishers' acknowledgements keep theirs.
   */
  private readonly commits: GroupCommit;

  constructor(
    root: RootDatabase,
    private readonly name: string,
    durability: "sync" | "async",
  ) {
    this.db = root.openDB<StoredRecord | number, QueueKey>({ name: "bridges" });
    this.commits = new GroupCommit(root, durability);
  }

  *entries() {
    for (const { key, value } of this.db.getRange({ start: [this.name, 0], end: [this.name, Number.MAX_SAFE_INTEGER] })) {
      yield { seq: key[1] as number, rec: value as StoredRecord };
    }
  }

  put(seq: number, rec: StoredRecord): Promise<void> {
    return this.commits.settle([this.db.put([this.name, seq], rec)]);
  }

  get(seq: number) {
    return this.db.get([this.name, seq]) as StoredRecord | undefined;
  }

  remove(seq: number): void {
    // Not awaited: if this delete is lost in a crash, the message is sent again (a counted duplicate).
    void this.db.remove([this.name, seq]).catch(() => {});
  }

  sentMark(): number {
    const v = this.db.get([this.name, "sent"]);
    return typeof v === "number" ? v : -1;
  }

  setSentMark(seq: number): void {
    void this.db.put([this.name, "sent"], seq).catch(() => {});
  }

  releasedSeqs(): number[] {
    const out: number[] = [];
    for (const key of this.db.getKeys({ start: [this.name, "rel", 0], end: [this.name, "rel", Number.MAX_SAFE_INTEGER] })) out.push((key as [string, "rel", number])[2]);
    return out;
  }

  putReleased(seq: number): Promise<void> {
    return this.commits.settle([this.db.put([this.name, "rel", seq], 1)]);
  }

  removeReleased(seq: number): void {
    void this.db.remove([this.name, "rel", seq]).catch(() => {});
  }
}

class MemoryBackend implements Backend {
  private readonly map = new Map<number, StoredRecord>();
  private mark = -1;
  entries() {
    return [...this.map].map(([seq, rec]) => ({ seq, rec }));
  }
  async put(seq: number, rec: StoredRecord) {
    this.map.set(seq, rec);
  }
  get(seq: number) {
    return this.map.get(seq);
  }
  remove(seq: number) {
    this.map.delete(seq);
  }
  sentMark() {
    return this.mark;
  }
  setSentMark(seq: number) {
    this.mark = seq;
  }
  private readonly rel = new Set<number>();
  releasedSeqs() {
    return [...this.rel];
  }
  async putReleased(seq: number) {
    this.rel.add(seq);
  }
  removeReleased(seq: number) {
    this.rel.delete(seq);
  }
}

export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
  onFull: "drop-oldest" | "drop-new";
}

/** Decided at once (stored or dropped by the policy); `durable` resolves when the write committed. */
export interface EnqueueResult {
  stored: boolean;
  /** Messages dropped by the policy: this one (drop-new) or older ones (drop-oldest). */
  dropped: number;
  durable: Promise<void>;
}

const DONE = Promise.resolve();

export class BridgeQueue {
  private readonly backend: Backend;
  /** Sequence numbers in order; entries before `head` are gone. Acked or dropped entries leave holes (absent from `sizes`). */
  private seqs: number[] = [];
  private head = 0;
  /** Index in `seqs` of the next entry to send. */
  private cursor = 0;
  /** Records whose LMDB write has not committed yet. */
  private readonly pending = new Map<number, StoredRecord>();
  private readonly sizes = new Map<number, { size: number; at: number }>();
  private nextSeq = 0;
  /** Entries up to this seq may have been sent before (this run or a previous one): sent again with DUP. */
  private sentUpTo: number;
  private markWritten: number;
  private count = 0;
  private byteCount = 0;
  /** QoS 2 messages whose PUBREC arrived: resumed with PUBREL, never published again. */
  private readonly released = new Set<number>();
  /** Deadlines of the queued messages that expire (only those: most never do). */
  private readonly expiring = new Map<number, number>();
  /** Messages dropped because their Message Expiry Interval ran out while queued. */
  expired = 0;

  constructor(
    name: string,
    private readonly limits: QueueLimits,
    lmdb?: { root: RootDatabase; durability: "sync" | "async" },
  ) {
    this.backend = lmdb ? new LmdbBackend(lmdb.root, name, lmdb.durability) : new MemoryBackend();
    for (const { seq, rec } of this.backend.entries()) {
      this.index(seq, sizeOf(rec.t, rec.p), rec.a);
      if (rec.e !== undefined) this.expiring.set(seq, rec.e);
      this.nextSeq = seq + 1;
    }
    for (const seq of this.backend.releasedSeqs()) {
      if (this.sizes.has(seq)) this.released.add(seq);
      else this.backend.removeReleased(seq); // its message was acknowledged; only the mark's delete was lost
    }
    this.sentUpTo = this.backend.sentMark();
    this.markWritten = this.sentUpTo;
    this.nextSeq = Math.max(this.nextSeq, this.sentUpTo + 1);
  }

  get depth(): number {
    return this.count;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Epoch ms of the oldest queued message, or null when empty. */
  get oldestAt(): number | null {
    this.skipHoles();
    return this.head < this.seqs.length ? this.sizes.get(this.seqs[this.head]!)!.at : null;
  }

  /**
   * Store one message. Full (by count or bytes): "drop-oldest" removes the oldest
   * entries to make room, "drop-new" refuses this one.
   */
  enqueue(topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, extras?: MessageExtras): EnqueueResult {
    const size = sizeOf(topic, payload);
    let dropped = 0;
    const fits = () => this.count < this.limits.maxMessages && this.byteCount + size <= this.limits.maxBytes;
    if (!fits()) {
      if (this.limits.onFull === "drop-new" || size > this.limits.maxBytes) return { stored: false, dropped: 1, durable: DONE };
      while (!fits() && this.count > 0) {
        this.skipHoles();
        this.remove(this.seqs[this.head]!);
        dropped++;
      }
    }
    const seq = this.nextSeq++;
    const at = Date.now();
    this.index(seq, size, at);
    const rec: StoredRecord = { t: topic, p: payload, q: qos, r: retain, a: at };
    if (extras?.properties || extras?.expiresAt !== undefined) {
      rec.v = 2;
      if (extras.properties) rec.x = toStored(extras.properties);
      if (extras.expiresAt !== undefined) {
        rec.e = extras.expiresAt;
        this.expiring.set(seq, extras.expiresAt);
      }
    }
    // Readable (and sendable) at once; durable when the put resolves.
    this.pending.set(seq, rec);
    const durable = this.backend.put(seq, rec).then(
      () => {
        this.pending.delete(seq);
      },
      (err: unknown) => {
        this.pending.delete(seq);
        this.remove(seq);
        throw err;
      },
    );
    return { stored: true, dropped, durable };
  }

  /**
   * The next message to send, or null when everything queued is in flight or sent.
   * Skips QoS 2 messages awaiting PUBCOMP (resumed with PUBREL instead) and drops
   * those whose expiry has passed ([MQTT-3.3.2-5]: not published after it).
   */
  next(now = Date.now()): QueuedMessage | null {
    while (this.cursor < this.seqs.length) {
      const seq = this.seqs[this.cursor++]!;
      if (!this.sizes.has(seq) || this.released.has(seq)) continue;
      const expiresAt = this.expiring.get(seq);
      if (expiresAt !== undefined && expiresAt <= now) {
        this.expired++;
        this.remove(seq);
        continue;
      }
      const rec = this.pending.get(seq) ?? this.backend.get(seq);
      if (!rec) continue;
      const dup = seq <= this.sentUpTo;
      if (seq > this.sentUpTo) this.sentUpTo = seq;
      const m: QueuedMessage = { seq, topic: rec.t, payload: Buffer.from(rec.p.buffer, rec.p.byteOffset, rec.p.byteLength), qos: rec.q as 0 | 1 | 2, retain: rec.r, at: rec.a, dup };
      if (rec.x) m.properties = fromStored(rec.x);
      if (rec.e !== undefined) m.expiresAt = rec.e;
      return m;
    }
    return null;
  }

  /** Drop queued messages whose expiry passed (those not in flight), so the depth and the metrics tell the truth while the link is down. */
  dropExpired(now = Date.now()): number {
    let n = 0;
    // seqs is ascending: everything from the cursor on is not sent yet.
    const nextUnsent = this.hasUnsent() ? this.seqs[this.cursor]! : Infinity;
    for (const [seq, at] of this.expiring) {
      if (at > now || this.released.has(seq)) continue;
      if (seq < nextUnsent) continue; // sent and awaiting its acknowledgement
      this.remove(seq);
      n++;
    }
    this.expired += n;
    return n;
  }

  /** PUBREC arrived for this QoS 2 message: resolves once that is recorded (durably, as the queue's durability). */
  markReleased(seq: number): Promise<void> {
    if (!this.sizes.has(seq)) return DONE;
    this.released.add(seq);
    return this.backend.putReleased(seq);
  }

  /** QoS 2 messages awaiting PUBCOMP, oldest first: on a reconnect with the session kept, each gets its PUBREL again. */
  releasedSeqs(): number[] {
    return [...this.released].filter((s) => this.sizes.has(s)).sort((a, b) => a - b);
  }

  /**
   * The upstream lost the session (CONNACK Session Present 0): it holds no
   * state for these messages and will not answer a PUBREL meaningfully, so they
   * are published again (with DUP). Exactly-once cannot hold across a lost session.
   */
  forgetReleased(): number {
    const n = this.released.size;
    for (const seq of this.released) this.backend.removeReleased(seq);
    this.released.clear();
    return n;
  }

  /** Sequence number of the oldest queued message (in flight, awaiting PUBCOMP or not yet sent), or null. */
  get oldestSeq(): number | null {
    this.skipHoles();
    return this.head < this.seqs.length ? this.seqs[this.head]! : null;
  }

  /** Sequence number next() would return, or null. */
  peekSeq(): number | null {
    return this.hasUnsent() ? this.seqs[this.cursor]! : null;
  }

  /** Whether next() could return something (cheap: no read). */
  hasUnsent(): boolean {
    while (this.cursor < this.seqs.length && !this.sizes.has(this.seqs[this.cursor]!)) this.cursor++;
    return this.cursor < this.seqs.length;
  }

  /** The upstream acknowledged it (or it was QoS 0 and written): gone for good. */
  ack(seq: number): void {
    this.remove(seq);
  }

  /** After a reconnect: send everything still queued again, oldest first. */
  rewind(): void {
    this.skipHoles();
    this.cursor = this.head;
  }

  /** Record how far sending got, so a restart marks those messages DUP. Cheap, not awaited. */
  persistSentMark(): void {
    if (this.sentUpTo !== this.markWritten) {
      this.markWritten = this.sentUpTo;
      this.backend.setSentMark(this.sentUpTo);
    }
  }

  private index(seq: number, size: number, at: number): void {
    this.seqs.push(seq);
    this.sizes.set(seq, { size, at });
    this.count++;
    this.byteCount += size;
  }

  private remove(seq: number): void {
    const entry = this.sizes.get(seq);
    if (!entry) return;
    this.sizes.delete(seq);
    this.count--;
    this.byteCount -= entry.size;
    this.backend.remove(seq);
    if (this.released.delete(seq)) this.backend.removeReleased(seq);
    this.expiring.delete(seq);
    this.skipHoles();
  }

  private skipHoles(): void {
    while (this.head < this.seqs.length && !this.sizes.has(this.seqs[this.head]!)) this.head++;
    if (this.cursor < this.head) this.cursor = this.head;
    if (this.head > 4096 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.cursor -= this.head;
      this.head = 0;
    }
  }
}

function sizeOf(topic: string, payload: Uint8Array): number {
  return Buffer.byteLength(topic) + payload.byteLength;
}
