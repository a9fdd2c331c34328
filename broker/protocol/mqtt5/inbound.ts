/**
 * What an MQTT 5 client sends after CONNECT, seen as mqtt-packet parses it and
 * before aedes handles it (a listener prepended on the client's parser). A
 * packet refused here has its `cmd` made unknown, which aedes ignores, and the
 * client gets DISCONNECT with the reason code and is closed.
 *
 *  - [MQTT-2.2.2-2] properties not allowed in the packet (0x81) or repeated (0x82).
 *  - Topic aliases: [MQTT-3.3.2-8] alias 0 or above our Topic Alias Maximum → 0x94;
 *    [MQTT-3.3.2-10/11] the mapping is per connection; an empty topic with an
 *    unknown alias is a Protocol Error (0x82). The alias is not forwarded.
 *  - [MQTT-3.3.4-7..9] Receive Maximum: a QoS 1/2 PUBLISH beyond ours while
 *    that many are unacknowledged → 0x93.
 *  - [MQTT-3.8.2.1.2] Subscription Identifier kept per filter; [MQTT-3.8.3-?]
 *    Retain Handling recorded so retained messages are sent per 0/1/2.
 *  - [MQTT-3.11.3-1] UNSUBACK reason codes: 0x00, or 0x11 when no such subscription existed.
 *  - [MQTT-3.14.2-2] DISCONNECT may change the Session Expiry Interval, not from 0;
 *    reason 0x04 (Disconnect with Will Message) publishes the will.
 */
import type { Client } from "aedes";
import { parseShare } from "../shared-subscriptions.js";
import type { Mqtt5Config } from "./config.js";
import { disconnectWith } from "./disconnect.js";
import { checkPacketProperties } from "./properties.js";
import { Reason } from "./reason-codes.js";
import type { V5Connection } from "./state.js";

interface ParsedPacket {
  cmd: string;
  qos?: number;
  messageId?: number;
  topic?: string;
  reasonCode?: number;
  properties?: Record<string, unknown>;
  subscriptions?: { topic: string; qos: number; rh?: number; nl?: boolean; rap?: boolean; subscriptionIdentifier?: number }[];
  unsubscriptions?: string[];
}

interface ClientInternals {
  _parser: NodeJS.EventEmitter;
  subscriptions: Record<string, unknown>;
  _disconnected?: boolean;
}

export interface InboundOptions {
  config: Mqtt5Config;
  onViolation(client: Client, reason: string): void;
  /** Whether any session (connected, away, or a shared group) subscribes to `topic`. */
  hasSubscribers(topic: string): Promise<boolean>;
  /** The client ends its connection with a new Session Expiry Interval. */
  onSessionExpiryChange(state: V5Connection, seconds: number): void;
}

export function watchInbound(state: V5Connection, opts: InboundOptions): void {
  const client = state.client as Client & ClientInternals;
  const { config } = opts;
  const refuse = (packet: ParsedPacket, reasonCode: number, reason: string) => {
    packet.cmd = "refused";
    opts.onViolation(client, reason);
    disconnectWith(client, reasonCode, reason);
  };
  client._parser.prependListener("packet", (packet: ParsedPacket) => {
    if (packet.cmd === "connect") return; // checked in preConnect
    const bad = checkPacketProperties(packet as Parameters<typeof checkPacketProperties>[0]);
    if (bad) return refuse(packet, bad.reasonCode, bad.reason);
    switch (packet.cmd) {
      case "publish":
        return publish(packet);
      case "subscribe":
        return subscribe(packet);
      case "unsubscribe": {
        const codes = (packet.unsubscriptions ?? []).map((f) => (f in client.subscriptions ? Reason.Success : Reason.NoSubscriptionExisted));
        if (packet.messageId !== undefined) state.unsubackCodes.set(packet.messageId, codes);
        for (const f of packet.unsubscriptions ?? []) state.subscriptionIds.delete(f);
        return;
      }
      case "disconnect":
        return disconnect(packet);
      // AUTH never gets here: enhanced-auth.ts takes it off the parser first
    }
  });

  function publish(packet: ParsedPacket): void {
    const props = packet.properties;
    const alias = props?.topicAlias as number | undefined;
    if (alias !== undefined) {
      if (alias === 0 || alias > config.maxTopicAlias) return refuse(packet, Reason.TopicAliasInvalid, `topic alias ${alias} (maximum ${config.maxTopicAlias})`);
      if (packet.topic) state.aliases.set(alias, packet.topic);
      else {
        const topic = state.aliases.get(alias);
        if (topic === undefined) return refuse(packet, Reason.ProtocolError, `topic alias ${alias} used before it was set`);
        packet.topic = topic;
      }
      delete props!.topicAlias;
    }
    if ((packet.qos ?? 0) > 0 && packet.messageId !== undefined && !state.inboundUnacked.has(packet.messageId)) {
      if (state.inboundUnacked.size >= config.receiveMaximum) {
        return refuse(packet, Reason.ReceiveMaximumExceeded, `more than ${config.receiveMaximum} QoS 1/2 messages unacknowledged`);
      }
      state.inboundUnacked.add(packet.messageId);
      // [MQTT-3.4.2-?] PUBACK/PUBREC 0x10 "No matching subscribers": settled long before the acknowledgement,
      // which wasmq writes once the message is stored and routed; if not, 0x00 is sent (always allowed).
      const id = packet.messageId;
      state.noSubscribers.delete(id);
      opts.hasSubscribers(packet.topic!).then(
        (any) => {
          if (!any && state.inboundUnacked.has(id)) state.noSubscribers.add(id);
        },
        () => {},
      );
    }
    if (props && typeof props.messageExpiryInterval === "number") {
      // absolute, so it counts down while queued; aedes-packet copies `messageExpiry` and the store honours it
      (packet as { messageExpiry?: number }).messageExpiry = Date.now() + props.messageExpiryInterval * 1000;
    }
  }

  function subscribe(packet: ParsedPacket): void {
    const id = packet.properties?.subscriptionIdentifier as number | undefined;
    if (id === 0) return refuse(packet, Reason.ProtocolError, "subscription identifier 0");
    for (const sub of packet.subscriptions ?? []) {
      // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error
      if (sub.nl && parseShare(sub.topic)) return refuse(packet, Reason.ProtocolError, `No Local on shared subscription ${sub.topic}`);
      // Retain Handling 1: only for a new subscription; 2: never ([MQTT-3.3.1-9..11])
      state.retainWanted.set(sub.topic, !(sub.rh === 2 || (sub.rh === 1 && sub.topic in client.subscriptions)));
      if (id !== undefined) {
        state.subscriptionIds.set(sub.topic, id);
        sub.subscriptionIdentifier = id; // stored with a persistent session's subscription
      } else state.subscriptionIds.delete(sub.topic);
    }
  }

  function disconnect(packet: ParsedPacket): void {
    const expiry = packet.properties?.sessionExpiryInterval;
    if (typeof expiry === "number") {
      if (state.requestedSessionExpiry === 0 && expiry !== 0) {
        return refuse(packet, Reason.ProtocolError, "DISCONNECT sets a session expiry after CONNECT asked for none");
      }
      opts.onSessionExpiryChange(state, Math.min(expiry, config.maxSessionExpiry));
    }
    if (packet.reasonCode === 0x04) {
      // Disconnect with Will Message: close without aedes' "clean disconnect" (which discards the will)
      packet.cmd = "refused";
      client.conn.destroy();
    }
  }
}
