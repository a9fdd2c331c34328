/**
 * A returning persistent session gets its stored queue and the live traffic
 * for it through two paths of aedes that both claim queue entries:
 *
 * - the replay (connect.js emptyQueue): a snapshot of the session's queue,
 *   each entry numbered through persistence.outgoingUpdate and written;
 * - live delivery (client.deliverQoS): every QoS 1/2 message is first stored
 *   in the queue of each persistent subscriber, then emitted; the client's
 *   delivery numbers that same entry through outgoingUpdate.
 *
 * From the moment aedes subscribes the returning client (restoreSubs) until the
 * replay ends, and for messages whose queue write finished before the replay's
 * snapshot but whose emit came after, both paths deliver the same entry. Either
 * the second path renumbers it and the message goes out twice with two packet
 * identifiers and no DUP, or the first delivery was already acknowledged, the
 * second finds no entry ("no such packet") and aedes drops the connection.
 * Measured with test/session-replay.test.ts before this module: dropped
 * connections on LMDB within a few reconnects.
 *
 * Here live QoS 1/2 deliveries to a persistent session wait until its replay
 * has ended, so the stored messages go first, in order [MQTT-4.6.0-1..3]
 * (unacknowledged ones re-sent with their original identifiers,
 * [MQTT-4.4.0-1]), and a live delivery of an entry the replay already took is
 * skipped: the entry is that message's one delivery. A waiting message is
 * already in the session's stored queue, so it is acknowledged to the emitter
 * at once (nothing upstream stalls) and a connection that ends before the
 * replay does loses nothing: the next one replays it.
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";

type Deliver = (packet: AedesPublishPacket, cb: () => void) => void;
interface ReplayingClient {
  deliverQoS: Deliver;
  connected: boolean;
  clean: boolean;
  conn: { once(event: "close", listener: () => void): unknown };
  once(event: "connected", listener: () => void): unknown;
}

interface ReplayState {
  /** Live deliveries that arrived before the replay ended; null once it has. */
  waiting: AedesPublishPacket[] | null;
  /**
   * The last REPLAYED_KEPT entries the replay took (broker id + counter), for
   * the connection's life: a message stored before the snapshot may be emitted
   * after the replay ended (its queue write and its emit are separate steps).
   * Only the newest entries of a queue can be such messages (the ones whose
   * publish was between its queue write and its emit at reconnect time), so a
   * long backlog does not need all its keys. Each live duplicate removes its key.
   */
  replayed: Set<string>;
}

const noop = () => {};
/** Far more than the publishes that can be between their queue write and their emit at one moment. */
const REPLAYED_KEPT = 4096;
const entryKey = (p: { brokerId?: string | null; brokerCounter?: number }) => `${p.brokerId}\u0000${p.brokerCounter}`;

export interface SessionReplay {
  /** Call for every new connection, before it sends CONNECT and after the other deliverQoS wrappers. */
  attachClient(client: Client): void;
}

export function installSessionReplay(aedes: Aedes): SessionReplay {
  const states = new WeakMap<object, ReplayState>();
  const persistence = (aedes as unknown as { persistence: { outgoingUpdate(client: Client, packet: AedesPublishPacket): Promise<void> } }).persistence;
  const outgoingUpdate = persistence.outgoingUpdate.bind(persistence);
  // Until CONNACK's series ends, only the replay numbers entries for this client (live ones wait below).
  persistence.outgoingUpdate = (client, packet) => {
    const state = states.get(client);
    if (state?.waiting && packet.brokerId) {
      state.replayed.add(entryKey(packet));
      // a Set iterates in insertion order: drop the oldest
      if (state.replayed.size > REPLAYED_KEPT) state.replayed.delete(state.replayed.values().next().value!);
    }
    return outgoingUpdate(client, packet);
  };

  return {
    attachClient(client) {
      const c = client as unknown as ReplayingClient;
      const deliverQoS = c.deliverQoS;
      const state: ReplayState = { waiting: [], replayed: new Set() };
      states.set(client, state);
      c.deliverQoS = (packet, cb) => {
        // Clean sessions have no stored queue; QoS 0 and retained-on-subscribe (no broker id) are never queued.
        if (c.clean || packet.qos === 0 || !packet.brokerId) return deliverQoS(packet, cb);
        if (state.waiting) {
          state.waiting.push(packet);
          return setImmediate(cb);
        }
        if (state.replayed.size > 0 && state.replayed.delete(entryKey(packet))) return setImmediate(cb);
        deliverQoS(packet, cb);
      };
      c.once("connected", () => {
        const waiting = state.waiting ?? [];
        state.waiting = null;
        for (const packet of waiting) {
          if (!state.replayed.delete(entryKey(packet))) deliverQoS(packet, noop);
        }
      });
      c.conn.once("close", () => {
        // The waiting messages stay in the stored queue for the next connection.
        state.waiting = null;
        state.replayed.clear();
      });
    },
  };
}
