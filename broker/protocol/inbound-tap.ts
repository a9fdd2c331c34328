/**
 * One "packet" listener on every client's parser for all of wasmq's inbound
 * inspectors (the subscribe hook, the zero-packet-id guard, observe's counter),
 * instead of one listener each. Node keeps an emitter's listeners in an array
 * that grows from 2 to ~19 slots when a third is added: with aedes' own
 * listener and three of ours, every idle client carried that array (~170 B;
 * bench: idle19k-conns, heap snapshots in bench/README.md "conns2").
 *
 * Inspectors are registered per broker (aedes sets `parser.client`, and the
 * client knows its broker), so the per-client cost is one listener entry.
 * They run before aedes handles the packet, in the order of `prependListener`:
 * the inspector registered last runs first, as if each had prepended itself.
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
  listeners(event: "packet"): unknown[];
  prependListener(event: "packet", listener: (packet: InboundPacket) => void): unknown;
}

const byBroker = new WeakMap<object, InboundInspector[]>();

function dispatch(this: { client: Client }, packet: InboundPacket): void {
  const list = byBroker.get((this.client as unknown as { broker: object }).broker);
  if (list === undefined) return;
  for (let i = 0; i < list.length; i++) list[i]!.call(this, packet);
}

/**
 * Run `inspector` on every packet `client` sends, before aedes handles it.
 * The same inspector attached for many clients of one broker is kept once.
 */
export function inspectInbound(client: Client, inspector: InboundInspector): void {
  const broker = (client as unknown as { broker: object }).broker;
  let list = byBroker.get(broker);
  if (list === undefined) byBroker.set(broker, (list = []));
  if (!list.includes(inspector)) list.unshift(inspector);
  const parser = (client as unknown as { _parser: ParserLike })._parser;
  if (parser.listeners("packet")[0] !== dispatch) parser.prependListener("packet", dispatch);
}
