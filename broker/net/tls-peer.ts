/**
 * What a TLS listener learned about a connection's client, kept beside the
 * stream it hands to aedes (the TLS socket itself, or over wss:// the
 * WebSocket stream on top of it), for the connect hook to read.
 */
import type { TLSSocket } from "node:tls";
import type { ClientCertificate } from "../../host/index.js";

export interface TlsPeer {
  /** The verified client certificate, or null when the client presented none. */
  cert: ClientCertificate | null;
  /** The listener maps the certificate's CN to the username. */
  useIdentityAsUsername: boolean;
  /** The TLS socket (under the WebSocket stream for wss://): channel binding reads its exporter (mqtt5/channel-binding.ts). */
  socket: TLSSocket;
}

const peers = new WeakMap<object, TlsPeer>();

export function recordTlsPeer(stream: object, peer: TlsPeer): void {
  peers.set(stream, peer);
}

/** undefined for connections that did not come through a TLS listener. */
export function tlsPeerOf(stream: object | null | undefined): TlsPeer | undefined {
  return stream ? peers.get(stream) : undefined;
}
