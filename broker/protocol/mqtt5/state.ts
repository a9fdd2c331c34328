/**
 * What the broker knows about one MQTT 5 connection: the limits the client
 * declared in CONNECT, what the broker granted, and the per-connection maps
 * (topic aliases, subscription identifiers, unacknowledged inbound packets).
 *
 * aedes 1.2 speaks 3.1.1 only, so a v5 CONNECT is handed to it as level 4
 * (connect.ts) and everything v5 is kept here, looked up by client or by
 * connection (the encoder sees only the stream it writes to). ABI v2 will read
 * the v5 fields for plugins from here and from the packets' `properties`.
 */
import type { Client } from "aedes";

export interface V5Connection {
  readonly client: Client;
  /** The CONNECT's properties, as mqtt-packet parsed them (the hooks' view for ABI v2). */
  readonly connectProperties: Record<string, unknown>;
  /** Client's Receive Maximum: QoS 1/2 PUBLISH we may have unacknowledged at the client. */
  receiveMaximum: number;
  /** Client's Topic Alias Maximum: aliases the broker may set on what it sends. */
  topicAliasMaximum: number;
  /** Outbound topic aliases, topic → alias ([MQTT-3.3.2-10]: per connection). */
  readonly outboundAliases: Map<string, number>;
  /** Client's Maximum Packet Size; Infinity when it declared none. */
  maximumPacketSize: number;
  requestProblemInformation: boolean;
  cleanStart: boolean;
  /** Session Expiry Interval the CONNECT asked for, and the one granted (seconds). */
  requestedSessionExpiry: number;
  sessionExpiry: number;
  /** Set when the broker chose the client identifier ([MQTT-3.2.2-16]). */
  assignedClientIdentifier: string | null;
  /** Set when the broker overrode the client's keep alive ([MQTT-3.2.2-21]). */
  serverKeepAlive: number | null;
  /** Will Delay Interval of the will, seconds (0 = publish at once). */
  willDelay: number;
  /** Why a CONNECT was refused, for the CONNACK reason string. */
  refusal: string | null;
  /** Inbound topic aliases, alias → topic ([MQTT-3.3.2-10]: per connection). */
  readonly aliases: Map<number, string>;
  /** QoS 1/2 packet identifiers received and not yet fully acknowledged by the broker. */
  readonly inboundUnacked: Set<number>;
  /** Subscription identifier per topic filter ([MQTT-3.8.2.1.2]). */
  readonly subscriptionIds: Map<string, number>;
  /** UNSUBACK reason codes computed as the UNSUBSCRIBE arrived, by packet identifier. */
  readonly unsubackCodes: Map<number, number[]>;
  /** Per filter, from its latest SUBSCRIBE: are retained messages sent for it (Retain Handling 0/1/2)? */
  readonly retainWanted: Map<string, boolean>;
  /** Inbound QoS 1/2 packet identifiers whose topic had no subscriber when they arrived (PUBACK/PUBREC 0x10). */
  readonly noSubscribers: Set<number>;
  /** Packet identifiers of messages dropped as too large, whose acknowledgement the broker plays itself. */
  readonly selfAcked: Set<number>;
  disconnectSent: boolean;
  /** Enhanced authentication succeeded (enhanced-auth.ts). After a successful exchange: its method, the CONNACK's data, and the identity the plugin named (v2-r4; null: none). */
  enhancedAuth: { method: string; data: Uint8Array | null; identity: string | null } | null;
}

const byClient = new WeakMap<object, V5Connection>();
const byConn = new WeakMap<object, V5Connection>();

type Lazy = "aliases" | "inboundUnacked" | "subscriptionIds" | "unsubackCodes" | "retainWanted" | "noSubscribers" | "outboundAliases" | "selfAcked";
type Declared = Omit<V5Connection, "client" | Lazy | "disconnectSent" | "refusal" | "enhancedAuth">;

/**
 * The eight per-connection maps and sets are created when first used: an idle
 * v5 client (most of a fleet) touches two of them at SUBSCRIBE and none after
 * (bench: idle19k-conns; ~100 B per empty Map or Set).
 */
class V5State {
  refusal: string | null = null;
  disconnectSent = false;
  enhancedAuth: V5Connection["enhancedAuth"] = null;
  private _aliases: Map<number, string> | null = null;
  private _inboundUnacked: Set<number> | null = null;
  private _subscriptionIds: Map<string, number> | null = null;
  private _unsubackCodes: Map<number, number[]> | null = null;
  private _retainWanted: Map<string, boolean> | null = null;
  private _noSubscribers: Set<number> | null = null;
  private _outboundAliases: Map<string, number> | null = null;
  private _selfAcked: Set<number> | null = null;

  constructor(readonly client: Client) {}

  get aliases(): Map<number, string> {
    return (this._aliases ??= new Map());
  }
  get inboundUnacked(): Set<number> {
    return (this._inboundUnacked ??= new Set());
  }
  get subscriptionIds(): Map<string, number> {
    return (this._subscriptionIds ??= new Map());
  }
  get unsubackCodes(): Map<number, number[]> {
    return (this._unsubackCodes ??= new Map());
  }
  get retainWanted(): Map<string, boolean> {
    return (this._retainWanted ??= new Map());
  }
  get noSubscribers(): Set<number> {
    return (this._noSubscribers ??= new Set());
  }
  get outboundAliases(): Map<string, number> {
    return (this._outboundAliases ??= new Map());
  }
  get selfAcked(): Set<number> {
    return (this._selfAcked ??= new Set());
  }
}

export function registerV5(client: Client, init: Declared): V5Connection {
  const state = Object.assign(new V5State(client), init) as V5State & Declared;
  byClient.set(client, state);
  byConn.set(client.conn, state);
  return state;
}

export function v5Of(client: Client | null | undefined): V5Connection | undefined {
  return client ? byClient.get(client) : undefined;
}

export function v5OfStream(stream: object): V5Connection | undefined {
  return byConn.get(stream);
}
