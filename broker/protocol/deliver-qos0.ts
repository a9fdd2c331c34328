/**
 * The last step of a QoS 0 delivery — what aedes' per-client `deliver0`
 * (aedes 1.2 lib/client.js `deliverQoS0`) does — without its per-delivery
 * allocations, as the final stage of the delivery path (delivery.ts).
 *
 * aedes decides at once (no-local, its broker-counter dedupe, authorizeForward)
 * and then, per delivery, queues a `setImmediate` with a closure ("give nodejs
 * some time to clear stacks") that copies the packet with QoS 0 and writes it,
 * and `write` queues a second `setImmediate` with another closure for the
 * callback. Under 64 B QoS 0 traffic those two closures, their contexts and
 * the two Immediate objects were ~26% of the broker's allocation per message
 * (sampling heap profile, after publish-parser.ts).
 *
 * Here the decision is the same and made at the same moment; the deliveries
 * routed in a run of synchronous code join one batch, written from one
 * `setImmediate` — the same check phase aedes' own immediates ran in, so
 * write batching's sweep still follows them — and each callback runs right
 * after its write was issued instead of one more immediate later (aedes'
 * callback also means "written", never "flushed"). A socket that refuses
 * more (write returned false) still waits for its drain before the callback,
 * through the client's `waitForDrain` (connection-limits.ts), as in aedes.
 *
 * Order: deliveries leave in the order they were routed. A QoS 1/2 delivery
 * (aedes' own deliverQoS, one immediate each) closes the open batch, so a QoS
 * 0 delivery routed after it goes out after it too, as with aedes' immediates.
 */
import { createRequire } from "node:module";
import type { AedesPublishPacket, Client } from "aedes";
import { mqttPacket } from "./mqtt.js";

/** aedes-packet, resolved from aedes itself (the packet class aedes writes). */
const aedesRequire = createRequire(createRequire(import.meta.url).resolve("aedes"));
const Packet = aedesRequire("aedes-packet") as new (original: object, broker: object) => AedesPublishPacket;

/** What this reads of aedes' client (aedes 1.2 lib/client.js). */
interface AedesClient {
  id: string;
  broker: { authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null | undefined };
  conn: object;
  connecting: boolean;
  connected: boolean;
  errored: boolean;
  duplicates: Record<string, number>;
  waitForDrain(callback: (err: Error | null) => void): void;
  _onError(err: Error | null): void;
}

class Batch {
  clients: AedesClient[] = [];
  packets: AedesPublishPacket[] = [];
  callbacks: (() => void)[] = [];
}

/** The batch deliveries join until the immediate that writes it runs, or a QoS 1/2 delivery closes it. */
let open: Batch | null = null;
/** Written batches, reused (one or two exist at a time). */
const spare: Batch[] = [];

/** aedes' dedupe (lib/client.js `dedupe`): a numbered message at or below the client's last counter from that broker is skipped. */
function notDuplicate(client: AedesClient, packet: AedesPublishPacket): boolean {
  const id = packet.brokerId;
  if (!id) return true;
  const counter = packet.brokerCounter;
  if ((client.duplicates[id] || 0) >= counter) return false;
  client.duplicates[id] = counter;
  return true;
}

/**
 * Deliver `packet` to `client` at QoS 0, as aedes' deliver0 would; `callback`
 * once it was handed to the socket (or skipped).
 */
export function deliverAtMostOnce(client: Client, packet: AedesPublishPacket, callback: () => void): void {
  const c = client as unknown as AedesClient;
  let toForward: AedesPublishPacket | null | undefined = null;
  // [MQTT-3.8.3-3] no-local (MQTT 5), then aedes' dedupe, then the deliver hook (hooks.ts)
  const p = packet as AedesPublishPacket & { clientId?: string; nl?: boolean };
  if (!(p.clientId === c.id && p.nl)) {
    toForward = notDuplicate(c, packet) ? c.broker.authorizeForward(client, packet) : null;
  }
  let b = open;
  if (b === null) {
    b = open = spare.pop() ?? new Batch();
    setImmediate(writeBatch, b);
  }
  b.clients.push(c);
  // null: nothing to write, only the callback to call (aedes: setImmediate(cb))
  b.packets.push(toForward ?? (null as unknown as AedesPublishPacket));
  b.callbacks.push(callback);
}

/** A QoS 1/2 delivery was routed: QoS 0 deliveries routed after it go out after it. */
export function closeQoS0Batch(): void {
  open = null;
}

function writeBatch(b: Batch): void {
  if (open === b) open = null;
  const { clients, packets, callbacks } = b;
  // (a callback may route more messages: they join a new batch)
  for (let i = 0; i < clients.length; i++) {
    const toForward = packets[i];
    const callback = callbacks[i]!;
    if (toForward === null) {
      callback();
      continue;
    }
    const client = clients[i]!;
    const out = new Packet(toForward!, client.broker);
    out.qos = 0;
    send(client, out, callback);
  }
  clients.length = 0;
  packets.length = 0;
  callbacks.length = 0;
  if (spare.length < 4) spare.push(b);
}

/** aedes' lib/write.js, with the callback called at once rather than from another immediate. */
function send(client: AedesClient, packet: AedesPublishPacket, callback: () => void): void {
  let error: Error | null = null;
  if (client.connecting || client.connected) {
    try {
      if (!mqttPacket.writeToStream(packet, client.conn as never) && !client.errored) {
        client.waitForDrain((err) => {
          client._onError(err);
          callback();
        });
        return;
      }
    } catch {
      error = new Error("packet received not valid");
    }
  } else {
    error = new Error("connection closed");
  }
  if (error !== null) client._onError(error);
  callback(); // errors are not passed on: mqemitter would throw them (as aedes)
}
