/**
 * QoS 2 across a bridge, exactly once in both directions, through mqtt.js's
 * public session-store interface (`outgoingStore` / `incomingStore`, the
 * `IStore` it exports).
 *
 * Outbound ([MQTT-4.3.3-*], [MQTT-4.4.0-1]). mqtt.js hands the store every
 * PUBREL before it writes it (PUBREC arrived) and waits for the store's
 * callback: `OutgoingSession.put` records "PUBREC received" in the bridge's
 * LMDB queue first, so no PUBREL ever leaves without that record. When a
 * connection starts and the upstream kept the session (CONNACK Session
 * Present), mqtt.js asks the store what to resend before it says "connect":
 * the PUBRELs of those messages, not their PUBLISH. The upstream has released
 * (or will release) each once and answers PUBCOMP; `del` then tells the bridge
 * the message is complete. Publishes themselves need nothing here: the queue
 * already holds them durably and resends them itself.
 *
 * Inbound. mqtt.js receives a QoS 2 PUBLISH by storing it (`put`, then PUBREC),
 * and delivers it only on PUBREL (`get`, deliver, `del`, PUBCOMP). With its
 * default in-memory store a PUBREL that comes after a reconnect or a restart of
 * the edge finds nothing and the message is lost. `InboundQoS2Store` keeps those
 * messages in LMDB (keys [bridge, "in", packetId]) across connections and
 * restarts, and is cleared when the upstream did not keep the session.
 */
import { Readable } from "node:stream";
import type { Database, RootDatabase } from "lmdb";
import type { IStore, Packet } from "mqtt";
import { GroupCommit } from "../persistence/lmdb/group-commit.js";
import { fromStored, toStored, type StoredProperties } from "./properties.js";

type DoneCallback = (err?: Error) => void;
/** mqtt.js types its stream as readable-stream's Readable; node's own is what it reads at run time (read, 'readable', 'end', destroy). */
type StoreStream = ReturnType<IStore["createStream"]>;
const streamOf = (packets: Packet[]): StoreStream => Readable.from(packets) as unknown as StoreStream;
type PacketCallback = (err?: Error, packet?: Packet) => void;

export interface ReleaseTracker {
  /** PUBREC arrived for the message sent with this packet id: resolves once recorded. */
  released(messageId: number): Promise<void>;
  /** Packet ids of the QoS 2 messages to resume with PUBREL on this connection, oldest first (empty when the session is gone). */
  resumable(): number[];
  /** PUBCOMP arrived for a resumed PUBREL. */
  completed(messageId: number): void;
}

/** mqtt.js `outgoingStore` for one connection to the upstream. */
export class OutgoingSession implements IStore {
  private readonly resumed = new Set<number>();

  constructor(private readonly tracker: ReleaseTracker) {}

  put(packet: Packet, cb: DoneCallback): this {
    if (packet.cmd !== "pubrel") {
      cb(); // a PUBLISH: the bridge queue already holds it
      return this;
    }
    this.tracker.released(packet.messageId!).then(
      () => cb(),
      (err: Error) => cb(err), // mqtt.js then does not send the PUBREL; the ack timeout reconnects and resumes
    );
    return this;
  }

  createStream(): StoreStream {
    const ids = this.tracker.resumable();
    for (const id of ids) this.resumed.add(id);
    return streamOf(ids.map((messageId): Packet => ({ cmd: "pubrel", messageId })));
  }

  del(packet: Pick<Packet, "messageId">, cb: PacketCallback): this {
    const id = packet.messageId!;
    if (this.resumed.delete(id)) this.tracker.completed(id);
    cb(undefined, packet as Packet);
    return this;
  }

  get(_packet: Pick<Packet, "messageId">, cb: PacketCallback): this {
    cb(new Error("missing packet"));
    return this;
  }

  close(cb: DoneCallback): void {
    cb();
  }
}

interface StoredInbound {
  t: string;
  p: Uint8Array;
  q: number;
  r: boolean;
  d: boolean;
  x?: StoredProperties;
  /** Message Expiry Interval as received (seconds). */
  me?: number;
}

type InboundKey = [string, "in", number];

/** mqtt.js `incomingStore` of one bridge, kept across its connections (and in LMDB across restarts). */
export class InboundQoS2Store implements IStore {
  private readonly db: Database<StoredInbound, InboundKey> | null;
  private readonly memory = new Map<number, StoredInbound>();
  /** Flush of the batch each write joined (group-commit.ts), not a later one's. */
  private readonly commits: GroupCommit | null;

  constructor(
    private readonly name: string,
    lmdb?: { root: RootDatabase; durability: "sync" | "async" },
  ) {
    this.db = lmdb ? lmdb.root.openDB<StoredInbound, InboundKey>({ name: "bridges" }) : null;
    this.commits = lmdb ? new GroupCommit(lmdb.root, lmdb.durability) : null;
  }

  /** Messages received (PUBREC sent) and not yet released by the upstream. */
  get size(): number {
    if (!this.db) return this.memory.size;
    return this.db.getKeysCount({ start: [this.name, "in", 0], end: [this.name, "in", 65536] });
  }

  put(packet: Packet, cb: DoneCallback): this {
    if (packet.cmd !== "publish") {
      cb();
      return this;
    }
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    const rec: StoredInbound = { t: packet.topic, p: payload, q: packet.qos, r: packet.retain, d: packet.dup };
    const props = packet.properties as Record<string, unknown> | undefined;
    if (props) {
      const { messageExpiryInterval, topicAlias: _a, subscriptionIdentifier: _s, ...rest } = props;
      const stored = toStored(rest as Parameters<typeof toStored>[0]);
      if (Object.keys(stored).length) rec.x = stored;
      if (typeof messageExpiryInterval === "number") rec.me = messageExpiryInterval;
    }
    if (!this.db) {
      this.memory.set(packet.messageId!, rec);
      cb();
      return this;
    }
    // PUBREC goes out only once this is committed (and flushed): a restart of the edge still finds the message when PUBREL comes.
    this.commits!.settle([this.db.put([this.name, "in", packet.messageId!], rec)]).then(
      () => cb(),
      (err: Error) => cb(err),
    );
    return this;
  }

  get(packet: Pick<Packet, "messageId">, cb: PacketCallback): this {
    const id = packet.messageId!;
    const rec = this.db ? this.db.get([this.name, "in", id]) : this.memory.get(id);
    if (!rec) {
      cb(new Error("missing packet"));
      return this;
    }
    const properties: Record<string, unknown> = rec.x ? { ...fromStored(rec.x) } : {};
    if (rec.me !== undefined) properties.messageExpiryInterval = rec.me;
    const pub = {
      cmd: "publish",
      messageId: id,
      topic: rec.t,
      payload: Buffer.from(rec.p.buffer, rec.p.byteOffset, rec.p.byteLength),
      qos: rec.q,
      retain: rec.r,
      dup: rec.d,
      ...(Object.keys(properties).length ? { properties } : {}),
    } as Packet;
    cb(undefined, pub);
    return this;
  }

  del(packet: Pick<Packet, "messageId">, cb: PacketCallback): this {
    const id = packet.messageId!;
    if (this.db) void this.db.remove([this.name, "in", id]).catch(() => {});
    else this.memory.delete(id);
    cb(undefined, packet as Packet);
    return this;
  }

  createStream(): StoreStream {
    return streamOf([]);
  }

  /** The upstream did not keep the session: it will never send PUBREL for what is stored here. */
  clear(): void {
    if (!this.db) return this.memory.clear();
    for (const key of this.db.getKeys({ start: [this.name, "in", 0], end: [this.name, "in", 65536] })) void this.db.remove(key).catch(() => {});
  }

  close(cb: DoneCallback): void {
    cb(); // mqtt.js closes its stores when a client ends; this one outlives the connection
  }
}
