/**
 * One "packet" listener on every client's parser for all of wasmq's inbound
 * inspectors (the subscribe hook, the zero-packet-id guard, observe's counter),
 * instead of one listener each. Node keeps an emitter's listeners in an array
 * that grows from 2 to ~19 slots when a third is added: with aedes' own
 * listener and three of ours, every idle client carried that array (~170 B;
 * bench: idle19k-conns, heap snapshots in bench/README.md "conns2").
 *
 * Inspectors are registered per broker (aedes sets `parser.client`, and the
 * client knows its broker), and aedes' own listener (one function for every
 * client) is swapped for one that runs them first, so a parser keeps a single
 * listener and no per-client cost remains. They run before aedes handles the
 * packet, in the order of `prependListener`: the inspector registered last
 * runs first, as if each had prepended itself.
 */
import type { Client } from "aedes";

export interface InboundPacket {
  cmd: string;
  messageId?: number;
  qos?: number;
  topic?: string;
  retain?: boolean;
  payload?: Buffer;
  subscriptions?: { topic: string; qos: number }[];
  properties?: Record<string, unknown>;
}

/** Called with the parser as `this` (`this.client` is the aedes client), before aedes sees the packet. */
export type InboundInspector = (this: { client: Client }, packet: InboundPacket) => void;

interface ParserLike {
  client: Client;
  listeners(event: "packet"): ((packet: InboundPacket) => void)[];
  prependListener(event: "packet", listener: (packet: InboundPacket) => void): unknown;
  on(event: "packet", listener: (packet: InboundPacket) => void): unknown;
  removeListener(event: "packet", listener: (packet: InboundPacket) => void): unknown;
}

type Listener = (this: { client: Client }, packet: InboundPacket) => void;

/*
 * A broker's inspectors, on the broker object under a symbol: read for every
 * inbound packet, where a property load with an inline cache is cheaper than
 * the WeakMap (hash) lookup it replaces (`inspectThenHandle` was 1.6% of the
 * broker's CPU self time under 64 B QoS 0 traffic). One property per broker,
 * not per client.
 */
const INSPECTORS = Symbol("wasmq.inboundInspectors");
type WithInspectors = { [INSPECTORS]?: InboundInspector[] };

function inspect(parser: { client: Client }, packet: InboundPacket): void {
  const list = (parser.client as unknown as { broker: WithInspectors }).broker[INSPECTORS];
  if (list === undefined) return;
  for (let i = 0; i < list.length; i++) list[i]!.call(parser, packet);
}

function dispatch(this: { client: Client }, packet: InboundPacket): void {
  inspect(this, packet);
}

/**
 * aedes' own listener (one function for every client) with the inspectors in
 * front: a parser with a single listener keeps no listener array at all.
 */
const combined = new WeakMap<Listener, Listener>();
function inFrontOf(aedesListener: Listener): Listener {
  let f = combined.get(aedesListener);
  if (f === undefined) {
    f = function inspectThenHandle(this: { client: Client }, packet: InboundPacket): void {
      inspect(this, packet);
      aedesListener.call(this, packet);
    };
    combined.set(aedesListener, f);
  }
  return f;
}
const ours = new WeakSet<Listener>([dispatch]);

/**
 * Run `inspector` on every packet `client` sends, before aedes handles it.
 * The same inspector attached for many clients of one broker is kept once.
 */
export function inspectInbound(client: Client, inspector: InboundInspector): void {
  const broker = (client as unknown as { broker: object }).broker;
  let list = (broker as WithInspectors)[INSPECTORS];
  if (list === undefined) (broker as WithInspectors)[INSPECTORS] = list = [];
  if (!list.includes(inspector)) list.unshift(inspector);
  const parser = (client as unknown as { _parser: ParserLike })._parser;
  const listeners = parser.listeners("packet") as Listener[];
  if (listeners.some((l) => ours.has(l))) return;
  if (listeners.length === 1) {
    // aedes' only listener: replaced by the same listener with the inspectors in front.
    const f = inFrontOf(listeners[0]!);
    ours.add(f);
    parser.removeListener("packet", listeners[0]!);
    parser.on("packet", f);
  } else {
    parser.prependListener("packet", dispatch);
  }
}
