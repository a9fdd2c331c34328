/**
 * Everything wasmq keeps per connected client, in one object stored on the
 * aedes client itself. A broker holds tens of thousands of mostly idle
 * clients; each layer keeping its own small object in its own WeakMap cost
 * every client five WeakMap entries, five object headers and the scopes of
 * the closures around them (bench: idle19k-conns, heap snapshots in
 * bench/README.md "conns2"). Each layer owns its group of fields below and
 * nothing else reads them.
 */
import type { Client } from "aedes";
import type { FrameState } from "./framing.js";
import type { OutboundLimits } from "./connection-limits.js";
import type { RecentDeliveries, Stages } from "./delivery.js";
import type { ReplayState } from "./session-replay.js";
import type { PacketOrder } from "./packet-order.js";

const STATE = Symbol("wasmq.clientState");

/**
 * Connection times are kept as milliseconds since this module loaded: a small
 * integer (a Smi) stays in the object's own field, where an epoch timestamp
 * (above 2^31) needs a 16-byte heap number per client. After 12.4 days of
 * uptime the values outgrow the small range and V8 boxes them again (correct, only larger).
 */
const CLOCK_ORIGIN = Date.now();
/** `at` as ms since CLOCK_ORIGIN; `| 0` makes V8 keep a small integer (arithmetic on Date.now() yields a heap number even when integral). */
function sinceOrigin(at: number): number {
  const ms = at - CLOCK_ORIGIN;
  return ms >= 0 && ms <= 0x3fffffff ? ms | 0 : ms;
}

export class ClientState implements FrameState {
  // -- hooks.ts: who the client authenticated as
  username: string | null = null;

  // -- ops/observe.ts: the connection's story, for log lines and the admin API
  /** From the CONNECT packet, kept for refusals (aedes sets client.id only after preConnect). */
  connectClientId: string | null = null;
  connectUsername: string | null = null;
  private connectedSince: number = sinceOrigin(Date.now());
  /** Why the connection ended, when the broker knows (error, limit, refusal). */
  reason: string | null = null;
  /** aedes may report several errors for one failing connection; it is counted once. */
  counted = false;
  /** The TCP socket under a WebSocket stream (null: the connection is the socket). */
  peerSocket: object | null = null;

  // -- delivery.ts: the broker's delivery stages (set when the client's deliveries are composed), and the dedupe ring (created at the first numbered delivery)
  stages: Stages | null = null;
  recent: RecentDeliveries | null = null;
  /** session-replay.ts: a returning persistent session's held deliveries and replayed entries (created when its replay takes or holds one). */
  replay: ReplayState | null = null;
  /** packet-order.ts: the client's packets running and held behind a SUBSCRIBE/UNSUBSCRIBE (while it has any). */
  order: PacketOrder | null = null;

  // -- connection-limits.ts: the packet framer (framing.ts)
  frameState = 0;
  frameLength = 0;
  frameLengthBytes = 0;
  /** connection-limits.ts: the send queue and the outbound window, created when the client first has something queued or in flight. */
  limits: OutboundLimits | null = null;

  constructor(readonly client: Client) {}

  /** When the connection was accepted, then when its CONNECT was accepted (ms since the epoch). */
  get connectedAt(): number {
    return CLOCK_ORIGIN + this.connectedSince;
  }
  set connectedAt(at: number) {
    this.connectedSince = sinceOrigin(at);
  }
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
