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
import type { LimitError } from "./limit-error.js";

export type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

export interface HeldDelivery {
  packet: AedesPublishPacket;
  /** Kept only for retained messages, whose sender waits for it. */
  callback: (() => void) | null;
}

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

  // -- delivery.ts: aedes' own delivery functions, and the dedupe ring (allocated at the first delivery)
  deliver0: Deliver | null = null;
  deliverQoS: Deliver | null = null;
  recent: Float64Array | null = null;
  recentBroker: (string | undefined)[] | null = null;
  recentNext = 0;
  passing: AedesPublishPacket | null = null;

  // -- connection-limits.ts: the packet framer (framing.ts)
  frameState = 0;
  frameLength = 0;
  frameMultiplier = 1;
  frameLengthBytes = 0;
  frameRemaining = 0;
  // -- connection-limits.ts: the send queue
  queued = 0;
  drainTimer: NodeJS.Timeout | null = null;
  tripped: LimitError | null = null;
  // -- connection-limits.ts: the outbound window
  unacked: Set<number> | null = null;
  /** Handed to aedes and not yet written, or dropped by it. */
  admitted = 0;
  /** Waiting for the window, in order; `bytes` counts the payloads of those without a callback. */
  held: HeldDelivery[] | null = null;
  bytes = 0;
  stalled: NodeJS.Timeout | null = null;
  closed = false;
  /** Whether the connection's 'close' cleans up after the limits (set once there is something to clean up). */
  closeWatched = false;

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
