/**
 * A tap on every MQTT packet the broker writes. aedes serializes each outgoing
 * packet with mqtt-packet's `writeToStream(packet, conn)` and offers no event for
 * it, so the broker wraps that one function (once per process) and looks the
 * connection up in a WeakMap: connections nobody observes (other brokers in the
 * same process, mqtt.js clients in tests) pay one failed lookup.
 *
 * Observers see the packet object before it is serialized and may correct it
 * (the CONNACK session-present fix in conformance.ts does).
 */
import { mqttPacket } from "./mqtt.js";

export interface OutgoingPacket {
  cmd: string;
  qos?: number;
  topic?: string;
  payload?: Buffer | Uint8Array | string;
  returnCode?: number;
  sessionPresent?: boolean;
  retain?: boolean;
  messageId?: number;
}

export type OutgoingObserver = (packet: OutgoingPacket) => void;

const observers = new WeakMap<object, OutgoingObserver[]>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  const original = mqttPacket.writeToStream;
  mqttPacket.writeToStream = function tappedWriteToStream(packet: object, stream, ...rest: unknown[]) {
    const list = observers.get(stream);
    if (list !== undefined) for (let i = 0; i < list.length; i++) list[i]!(packet as OutgoingPacket);
    return (original as (...args: unknown[]) => boolean)(packet, stream, ...rest);
  } as typeof original;
}

/** Call `observer` with each packet written to `stream`, until the stream is garbage. */
export function observeOutgoing(stream: object, observer: OutgoingObserver): void {
  install();
  const list = observers.get(stream);
  if (list) list.push(observer);
  else observers.set(stream, [observer]);
}
