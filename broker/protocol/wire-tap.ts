/**
 * A tap on every MQTT packet the broker writes. aedes serializes each outgoing
 * packet with mqtt-packet's `writeToStream(packet, conn)` and offers no event for
 * it, so the broker wraps that one function (once per process) and reads the
 * connection's tap from one property of the stream: connections nobody
 * observes (other brokers in the same process, mqtt.js clients in tests) have
 * none. Every connection of a broker has the same observers and flags, so they
 * share one frozen tap record (a WeakMap and a WeakSet entry per connection
 * cost ~65 B each idle client, and three lookups per packet written).
 *
 * Observers see the packet object before it is serialized and may correct a
 * CONNACK (the session-present fix in conformance.ts does), never a PUBLISH:
 * a QoS 0 delivery is written as the router handed it (outgoing-publish.ts). A connection may
 * also have an encoder, which serializes in place of mqtt-packet's default
 * (the MQTT 5 layer: mqtt5/encoder.ts), after the observers ran. Other
 * connections marked with `writeWhole` get their PUBLISH and acknowledgements
 * serialized in one piece (whole-packet.ts); the rest goes to mqtt-packet.
 */
import { mqttPacket } from "./mqtt.js";
import { writeWholePacket } from "./whole-packet.js";

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

/** `stream` is the connection written to (aedes sets `stream.client`): one shared observer can serve every connection, which saves a closure per client. */
export type OutgoingObserver = (packet: OutgoingPacket, stream: object) => void;
/** Serialize `packet` onto `stream` (through `write`, mqtt-packet's own writeToStream); returns what writeToStream returns. */
export type OutgoingEncoder = (packet: OutgoingPacket, stream: object, write: (packet: object, stream: object, opts?: object) => boolean) => boolean;

/** What is done with each packet written to a stream; shared by every connection with the same observers and flags. */
interface Tap {
  readonly observers: readonly OutgoingObserver[];
  /** The hot packets are written whole (and held for the turn: write-batching.ts). */
  readonly whole: boolean;
  readonly encoder: OutgoingEncoder | null;
}
const TAP = Symbol("wasmq.wireTap");
type Tapped = { [TAP]?: Tap };
const NO_TAP: Tap = Object.freeze({ observers: Object.freeze([]) as readonly OutgoingObserver[], whole: false, encoder: null });
/** What holds a connection's writes for the turn (write-batching.ts; one shared function, no closure per connection). */
let holdTurn: (stream: object, bytes: number) => void = () => {};
let installed = false;

/** Payload bytes of the packet about to be written (0 for packets without one): lets the batch keep large PUBLISHes together. */
function payloadBytes(packet: object): number {
  const payload = (packet as OutgoingPacket).payload;
  return payload === undefined ? 0 : payload.length;
}

function install(): void {
  if (installed) return;
  installed = true;
  const original = mqttPacket.writeToStream;
  /** What an encoder writes with: whole where whole-packet.ts can (MQTT 5 included), else mqtt-packet. */
  const encoderWrite = (packet: object, stream: object, opts?: object): boolean => {
    if ((stream as Tapped)[TAP]?.whole === true) {
      holdTurn(stream, payloadBytes(packet));
      const written = writeWholePacket(packet, stream as { write(chunk: Buffer): boolean }, (opts as { protocolVersion?: number } | undefined)?.protocolVersion ?? 4);
      if (written !== null) return written;
    }
    return original(packet, stream as never, opts);
  };
  // Explicit parameters, not `...rest`: a rest array would be allocated for every packet written.
  mqttPacket.writeToStream = function tappedWriteToStream(packet: object, stream, opts?: object) {
    const tap = (stream as Tapped)[TAP];
    if (tap === undefined) return original(packet, stream, opts);
    const list = tap.observers;
    for (let i = 0; i < list.length; i++) list[i]!(packet as OutgoingPacket, stream);
    if (tap.encoder !== null) return tap.encoder(packet as OutgoingPacket, stream, encoderWrite);
    if (tap.whole) {
      // mqtt-packet corks each packet's pieces together; a whole packet needs no cork of its own, only the turn's hold
      holdTurn(stream, payloadBytes(packet));
      const written = writeWholePacket(packet, stream as { write(chunk: Buffer): boolean });
      if (written !== null) return written;
    }
    return original(packet, stream, opts);
  } as typeof original;
}

/**
 * Tap records are shared, never mutated: every connection of a broker gets
 * the same observers in the same order and the same flags, so they share one
 * frozen record instead of each holding an array (grown to ~19 slots by its
 * second push; bench: idle19k-conns). `withObserver` / `withWhole` intern
 * "this record plus that"; a record with an encoder (one per MQTT 5
 * connection) is the connection's own.
 */
// Weak both ways: a closed broker's observers (and the records naming them) are not kept alive by the cache.
const extended = new WeakMap<Tap, WeakMap<OutgoingObserver, Tap>>();
const wholeOf = new WeakMap<Tap, Tap>();
function withObserver(tap: Tap, observer: OutgoingObserver): Tap {
  if (tap.encoder !== null) return Object.freeze({ ...tap, observers: Object.freeze([...tap.observers, observer]) });
  let byObserver = extended.get(tap);
  if (byObserver === undefined) extended.set(tap, (byObserver = new WeakMap()));
  let longer = byObserver.get(observer);
  if (longer === undefined) byObserver.set(observer, (longer = Object.freeze({ ...tap, observers: Object.freeze([...tap.observers, observer]) })));
  return longer;
}
function withWhole(tap: Tap): Tap {
  if (tap.whole) return tap;
  if (tap.encoder !== null) return Object.freeze({ ...tap, whole: true });
  let whole = wholeOf.get(tap);
  if (whole === undefined) wholeOf.set(tap, (whole = Object.freeze({ ...tap, whole: true })));
  return whole;
}

/** Call `observer` with each packet written to `stream`, until the stream is garbage. */
export function observeOutgoing(stream: object, observer: OutgoingObserver): void {
  install();
  const s = stream as Tapped;
  s[TAP] = withObserver(s[TAP] ?? NO_TAP, observer);
}

/**
 * Serialize the hot packets written to `stream` (MQTT 3.1.1 PUBLISH and
 * acknowledgements) in one piece each, calling `hold(stream)` before each
 * write (the same function for every connection), with the payload bytes
 * the packet carries.
 */
export function writeWhole(stream: object, hold: (stream: object, bytes: number) => void): void {
  install();
  holdTurn = hold;
  const s = stream as Tapped;
  s[TAP] = withWhole(s[TAP] ?? NO_TAP);
}

/** Serialize every packet written to `stream` with `encoder` (one per stream; the last set wins). */
export function encodeWith(stream: object, encoder: OutgoingEncoder): void {
  install();
  const s = stream as Tapped;
  s[TAP] = Object.freeze({ ...(s[TAP] ?? NO_TAP), encoder });
}
