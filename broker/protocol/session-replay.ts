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
 *
 * This is a stage of the shared delivery path (delivery.ts), not a wrapper
 * per client: a client carries one null field until its replay takes or holds
 * a message, and "until the replay has ended" is aedes' own `connected` flag
 * (set when the CONNECT series, replay included, has run), announced once
 * per broker with `clientReady`.
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";
import { existingStateOf, type ClientState } from "./client-state.js";
import { composeDeliveries, deliverHeld, deliveryStages } from "./delivery.js";

interface ReplayingClient {
  connected: boolean;
  clean: boolean;
}

export class ReplayState {
  /** Live deliveries that arrived before the replay ended. */
  waiting: AedesPublishPacket[] = [];
  /**
   * The last REPLAYED_KEPT entries the replay took (broker id + counter), for
   * the connection's life: a message stored before the snapshot may be emitted
   * after the replay ended (its queue write and its emit are separate steps).
   * Only the newest entries of a queue can be such messages (the ones whose
   * publish was between its queue write and its emit at reconnect time), so a
   * long backlog does not need all its keys. Each live duplicate removes its key.
   */
  readonly replayed = new Set<string>();
}

const noop = () => {};
/** Far more than the publishes that can be between their queue write and their emit at one moment. */
const REPLAYED_KEPT = 4096;
const entryKey = (p: { brokerId?: string | null; brokerCounter?: number }) => `${p.brokerId}\u0000${p.brokerCounter}`;

export interface SessionReplay {
  /** Call for every new connection: routes its deliveries through the broker's delivery stages. */
  attachClient(client: Client): void;
}

/** The replay stage: holds or skips a QoS 1/2 delivery to a returning persistent session (delivery.ts calls it first on the QoS path). */
function replayStage(st: ClientState, packet: AedesPublishPacket, callback: () => void): boolean {
  const c = st.client as unknown as ReplayingClient;
  // Clean sessions have no stored queue; QoS 0 and retained-on-subscribe (no broker id) are never queued.
  if (c.clean || packet.qos === 0 || !packet.brokerId) return false;
  if (!c.connected) {
    (st.replay ??= new ReplayState()).waiting.push(packet);
    setImmediate(callback);
    return true;
  }
  const replayed = st.replay?.replayed;
  if (replayed !== undefined && replayed.size > 0 && replayed.delete(entryKey(packet))) {
    setImmediate(callback);
    return true;
  }
  return false;
}

export function installSessionReplay(aedes: Aedes): SessionReplay {
  const persistence = (aedes as unknown as { persistence: { outgoingUpdate(client: Client, packet: AedesPublishPacket): Promise<void> } }).persistence;
  const outgoingUpdate = persistence.outgoingUpdate.bind(persistence);
  // Until the CONNECT series ends, only the replay numbers entries for this client (live ones wait in the stage).
  persistence.outgoingUpdate = (client, packet) => {
    const c = client as unknown as ReplayingClient;
    if (!c.connected && !c.clean && packet.brokerId) {
      const st = existingStateOf(client);
      if (st !== undefined) {
        const replayed = (st.replay ??= new ReplayState()).replayed;
        replayed.add(entryKey(packet));
        // a Set iterates in insertion order: drop the oldest
        if (replayed.size > REPLAYED_KEPT) replayed.delete(replayed.values().next().value!);
      }
    }
    return outgoingUpdate(client, packet);
  };
  deliveryStages(aedes).replay = replayStage;
  // The replay has ended (aedes sets `connected` just before): the held deliveries follow the stored ones, in order.
  aedes.on("clientReady", (client: Client) => {
    const st = existingStateOf(client);
    const held = st?.replay?.waiting;
    if (st === undefined || held === undefined || held.length === 0) return;
    st.replay!.waiting = [];
    for (const packet of held) {
      if (!st.replay!.replayed.delete(entryKey(packet))) deliverHeld(st, packet, noop);
    }
  });

  return {
    attachClient(client) {
      composeDeliveries(client);
    },
  };
}
