/**
 * An MQTT 5 CONNECT, before aedes 1.2 (which speaks 3.1.1 only) sees it:
 * checked, its v5 semantics applied, then handed on as a level-4 CONNECT.
 *
 *  - [MQTT-2.2.2-2] properties not allowed in CONNECT / the will, or repeated: CONNACK 0x81/0x82.
 *  - [MQTT-3.1.2-?] Receive Maximum 0 or Maximum Packet Size 0: Protocol Error, CONNACK 0x82.
 *  - Authentication Method: the exchange runs with the plugin that declared it before aedes
 *    goes on (enhanced-auth.ts); a method no plugin declared gets CONNACK 0x8C ([MQTT-4.12.0-1]).
 *  - [MQTT-3.1.3-6] an empty client identifier gets one assigned, with Clean Start 0 as well as
 *    1, returned as Assigned Client Identifier ([MQTT-3.2.2-16]).
 *  - [MQTT-3.1.2-21] Server Keep Alive: a keep alive above `mqtt5.serverKeepAlive` (or 0) is
 *    replaced by it, and aedes enforces that value.
 *  - Session Expiry Interval (granted: capped by `mqtt5.maxSessionExpiry`) and Clean Start map to
 *    aedes' single `clean` flag: a session that outlives the connection is aedes clean=false;
 *    Clean Start 1 with a non-zero expiry wipes the old session first ([MQTT-3.1.2-4]).
 */
import type { Aedes, Client, ConnectPacket } from "aedes";
import { randomUUID } from "node:crypto";
import { refuseConnect } from "../mqtt.js";
import type { Mqtt5Config } from "./config.js";
import { checkPacketProperties } from "./properties.js";
import { Reason } from "./reason-codes.js";
import type { EnhancedAuth } from "./enhanced-auth.js";
import { registerV5, type V5Connection } from "./state.js";

/** 3.1.1 return codes refuseConnect writes; the encoder maps them, so v5 codes without a 3.1.1 twin go out directly. */
const directReason = (code: number) => 0x100 + code;

export interface ConnectOptions {
  config: Mqtt5Config;
  /** Wipe a stored session (subscriptions, queue, inbound QoS 2 state) before this connection takes the id. */
  wipeSession(clientId: string): Promise<void>;
  /** A v5 connection is set up (its encoder and listeners attach here). */
  onV5(state: V5Connection): void;
  onViolation(client: Client, reason: string): void;
  /** Runs enhanced authentication (MQTT 5.0 section 4.12) with plugins. */
  enhancedAuth: EnhancedAuth;
}

type V5ConnectPacket = Omit<ConnectPacket, "properties" | "will"> & { properties?: Record<string, unknown>; will?: { properties?: Record<string, unknown> } };

export function installConnect(aedes: Aedes, opts: ConnectOptions): void {
  const { config } = opts;
  const inner = aedes.preConnect;
  aedes.preConnect = (client, raw, callback) => {
    const packet = raw as V5ConnectPacket;
    if (packet.protocolVersion !== 5) return inner.call(aedes, client, raw, callback);
    const props = (packet.properties ?? {}) as Record<string, unknown>;
    const requested = typeof props.sessionExpiryInterval === "number" ? props.sessionExpiryInterval : 0;
    const granted = Math.min(requested, config.maxSessionExpiry);
    const state = registerV5(client, {
      connectProperties: props,
      receiveMaximum: typeof props.receiveMaximum === "number" ? props.receiveMaximum : 65535,
      maximumPacketSize: typeof props.maximumPacketSize === "number" ? props.maximumPacketSize : Infinity,
      topicAliasMaximum: config.outboundTopicAliases && typeof props.topicAliasMaximum === "number" ? props.topicAliasMaximum : 0,
      requestProblemInformation: props.requestProblemInformation !== false && props.requestProblemInformation !== 0,
      cleanStart: packet.clean === true,
      requestedSessionExpiry: requested,
      sessionExpiry: granted,
      assignedClientIdentifier: null,
      serverKeepAlive: null,
      willDelay: Number(packet.will?.properties?.willDelayInterval ?? 0),
    });
    opts.onV5(state);

    const refuse = (reasonCode: number, reason: string) => {
      state.refusal = reason;
      opts.onViolation(client, reason);
      refuseConnect(client, reasonCode);
      callback(null, false);
    };
    const bad = checkPacketProperties(packet as unknown as Parameters<typeof checkPacketProperties>[0]);
    if (bad) return refuse(directReason(bad.reasonCode), bad.reason);
    if (props.receiveMaximum === 0) return refuse(directReason(Reason.ProtocolError), "Receive Maximum 0");
    if (props.maximumPacketSize === 0) return refuse(directReason(Reason.ProtocolError), "Maximum Packet Size 0");
    // section 3.1.2.11.10: Authentication Data without an Authentication Method is a Protocol Error
    if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
      return refuse(directReason(Reason.ProtocolError), "Authentication Data without an Authentication Method");
    }
    if (props.authenticationMethod !== undefined) {
      if (!opts.enhancedAuth.offers(String(props.authenticationMethod))) {
        return refuse(directReason(Reason.BadAuthenticationMethod), `authentication method ${JSON.stringify(props.authenticationMethod)} is not supported`);
      }
      // aedes sees the CONNECT only once the plugin said Success
      return opts.enhancedAuth.begin(state, packet, {
        admit: () => admit(state, packet, raw, callback),
        refuse: (code, reason) => refuse(directReason(code), reason),
      });
    }
    admit(state, packet, raw, callback);
  };

  /** The CONNECT, authenticated as far as the MQTT 5 layer goes, given its v5 meaning and handed to aedes. */
  function admit(state: V5Connection, packet: V5ConnectPacket, raw: ConnectPacket, callback: (err: Error | null, ok: boolean) => void): void {
    const client = state.client;
    const granted = state.sessionExpiry;
    if (!packet.clientId) {
      state.assignedClientIdentifier = `wasmq-${randomUUID()}`;
      packet.clientId = state.assignedClientIdentifier;
    }
    if (config.serverKeepAlive > 0 && (!packet.keepalive || packet.keepalive > config.serverKeepAlive)) {
      state.serverKeepAlive = config.serverKeepAlive;
      packet.keepalive = config.serverKeepAlive;
    }
    // aedes: clean=true starts afresh AND ends the session with the connection.
    const wipeFirst = packet.clean && granted > 0;
    packet.clean = packet.clean && granted === 0;
    // mqtt-packet's parser keeps the CONNECT as its settings: it must go on parsing v5
    (client as unknown as { _parser: { settings: object } })._parser.settings = { protocolVersion: 5 };
    packet.protocolVersion = 4;
    // aedes records the level it is handed; logs, admin and $SYS should see 5
    Object.defineProperty(client, "version", { get: () => 5, set: () => {}, configurable: true });
    if (!wipeFirst) return inner.call(aedes, client, raw, callback);
    opts.wipeSession(packet.clientId).then(
      () => inner.call(aedes, client, raw, callback),
      (err: Error) => callback(err, false),
    );
  }
}

export { directReason };
