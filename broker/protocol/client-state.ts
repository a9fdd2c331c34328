/**
 * Everything wasmq keeps per connected client, in one object stored on the
 * aedes client itself. A broker holds tens of thousands of mostly idle
 * clients; each layer keeping its own small object in its own WeakMap cost
 * every client five WeakMap entries, five object headers and the scopes of
 * the closures around them (bench: idle19k-conns, heap snapshots in
 * bench/README.md "conns2"). Each layer owns its group of fields below and
 * nothing else reads them.
 */
import type { AedesPublishPacket, Client } from "aedes";
import type { FrameState } from "./framing.js";
import type { OutboundLimits } from "./connection-limits.js";
import type { RecentDeliveries } from "./delivery.js";
import type { ReplayState } from "./session-replay.js";

export type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

const STATE = Symbol("wasmq.clientState");

export class ClientState implements FrameState {
  // -- hooks.ts: who the client authenticated as
  username: string | null = null;

  // -- ops/observe.ts: the connection's story, for log lines and the admin API
  /** From the CONNECT packet, kept for refusals (aedes sets client.id only after preConnect). */
  connectClientId: string | null = null;
  connectUsername: string | null = null;
  connectedAt: number = Date.now();
  /** Why the connection ended, when the broker knows (error, limit, refusal). */
  reason: string | null = null;
  /** aedes may report several errors for one failing connection; it is counted once. */
  counted = false;
  /** The TCP socket under a WebSocket stream (null: the connection is the socket). */
  peerSocket: object | null = null;

  // -- delivery.ts: aedes' own delivery functions, and the dedupe ring (created at the first numbered delivery)
  deliver0: Deliver | null = null;
  deliverQoS: Deliver | null = null;
  recent: RecentDeliveries | null = null;
  /** session-replay.ts: a returning persistent session's held deliveries and replayed entries (created when its replay takes or holds one). */
  replay: ReplayState | null = null;

  // -- connection-limits.ts: the packet framer (framing.ts)
  frameState = 0;
  frameLength = 0;
  frameMultiplier = 1;
  frameLengthBytes = 0;
  frameRemaining = 0;
  /** connection-limits.ts: the send queue and the outbound window, created when the client first has something queued or in flight. */
  limits: OutboundLimits | null = null;

  constructor(readonly client: Client) {}
}

/** The client's state, created on first use. */
export function stateOf(client: Client): ClientState {
  const c = client as Client & { [STATE]?: ClientState };
  return (c[STATE] ??= new ClientState(client));
}

/** The client's state if a layer created it (clients of other brokers in the process have none). */
export function existingStateOf(client: Client | null | undefined): ClientState | undefined {
  return client ? (client as Client & { [STATE]?: ClientState })[STATE] : undefined;
}
