/**
 * Server-sent DISCONNECT ([MQTT-3.14.0-1]: only after CONNACK, only to MQTT 5
 * clients). The packet is flushed before the connection is closed: wasmq
 * corks sockets for the rest of the event-loop turn (write-batching.ts), and
 * destroying a corked socket would discard it.
 */
import type { Client } from "aedes";
import type { Duplex } from "node:stream";
import { mqttPacket } from "../mqtt.js";
import { v5Of } from "./state.js";

/** Write DISCONNECT with `reasonCode` to a v5 client (no-op for 3.1.1 or when already sent). Returns whether it was written. */
export function sendDisconnect(client: Client, reasonCode: number, reasonString?: string): boolean {
  const state = v5Of(client);
  const conn = client.conn as Duplex;
  if (!state || state.disconnectSent || conn.destroyed || !(client as unknown as { connackSent?: boolean }).connackSent) return false;
  state.disconnectSent = true;
  const properties = reasonString && state.requestProblemInformation ? { reasonString } : undefined;
  mqttPacket.writeToStream({ cmd: "disconnect", reasonCode, ...(properties ? { properties } : {}) }, conn);
  while (conn.writableCorked > 0) conn.uncork();
  return true;
}

/** DISCONNECT with a reason code, then close: for protocol errors found in our layer. */
export function disconnectWith(client: Client, reasonCode: number, reason: string): void {
  sendDisconnect(client, reasonCode, reason);
  const conn = client.conn as Duplex;
  conn.end();
  conn.destroy(new Error(reason));
}
