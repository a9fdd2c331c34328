/**
 * Channel binding for enhanced authentication (ABI v2-r4 `channel_binding`):
 * the `tls-exporter` binding of RFC 9266 — 32 bytes from the TLS exporter with
 * the label "EXPORTER-Channel-Binding" and an empty context — so that a
 * mechanism such as SCRAM-SHA-256-PLUS proves the exchange ran over this very
 * TLS connection (no man in the middle terminating TLS in between).
 *
 * TLS 1.3 only: RFC 9266 section 3 forbids tls-exporter over TLS 1.2 without
 * the extended master secret extension, which Node does not let us check.
 * Plain TCP, plain WebSocket and TLS 1.2 connections have no binding (null).
 */
import { tlsPeerOf } from "../../net/tls-peer.js";

const LABEL = "EXPORTER-Channel-Binding";
const LENGTH = 32;
const EMPTY_CONTEXT = Buffer.alloc(0);

/** The connection's tls-exporter value, or null when it has none. */
export function tlsExporterOf(conn: object | null | undefined): Uint8Array | null {
  const socket = tlsPeerOf(conn)?.socket;
  if (!socket || socket.destroyed || socket.getProtocol() !== "TLSv1.3") return null;
  return socket.exportKeyingMaterial(LENGTH, LABEL, EMPTY_CONTEXT);
}
