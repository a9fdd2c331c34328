/**
 * Bridges in the broker: installs the bridges of the config on an aedes
 * instance and answers "which messages cross which bridge".
 *
 * Where the outbound enqueue sits: aedes.publish, wrapped *before* the plugin
 * hooks (broker/protocol/hooks.ts) take their reference to it. Every local
 * publish reaches it — a client's QoS 1 publish (hooks publish first and
 * acknowledge after, so PUBACK waits), QoS 2 (aedes sends PUBREC after
 * broker.publish completes), QoS 0, wills, plugin publishes — and its callback
 * fires only when every bridge that takes the message has stored it.
 *
 * Loops ([issue #14]): a message that came in over a bridge never goes back
 * over it; by default (forwardBridged: false) it goes over no other bridge
 * either, nor does a message published here by a remote broker's bridge
 * (CONNECT with the bridge flag, 0x80 on the protocol level, or in MQTT 5 the
 * user property "wasmq-bridge"): one hop, as
 * HiveMQ Edge. And this broker never echoes a bridge client's own messages
 * back to it (the remote side of a two-way bridge, as Mosquitto does).
 */
import type { Aedes, Client, PublishPacket } from "aedes";
import type { Logger } from "pino";
import type { PluginChain } from "../../host/index.js";
import { ConnackCode, refuseConnect } from "../protocol/mqtt.js";
import { userPropertyValue } from "../protocol/mqtt5/user-properties.js";
import { Bridge } from "./bridge.js";
import { BRIDGE_USER_PROPERTY } from "./upstream.js";
import type { BridgeConfig } from "./config.js";

export { Bridge } from "./bridge.js";

export interface BridgeManager {
  readonly bridges: readonly Bridge[];
  /** After the plugin hooks are installed: no echo to remote bridge clients. */
  installForwardGuard(): void;
  start(): void;
  close(): Promise<void>;
}

const BRIDGE_ID_PREFIX = "$bridge/";

const managers = new WeakMap<Aedes, BridgeManager>();

/** The bridges running on a broker (for metrics, $SYS and the admin API). */
export function bridgesOf(aedes: Aedes): readonly Bridge[] {
  return managers.get(aedes)?.bridges ?? [];
}

export interface BridgeInstallOptions {
  bridges: BridgeConfig[];
  chain: PluginChain | null;
  logger: Logger;
  lmdb?: { root: import("lmdb").RootDatabase; durability: "sync" | "async" };
}

type PublishFn = (packet: PublishPacket, client: Client | null, done?: (err?: Error) => void) => void;

export function installBridges(aedes: Aedes, opts: BridgeInstallOptions): BridgeManager {
  const inboundOf = new WeakMap<object, Bridge>();
  /** Clients that connected with the bridge flag (another broker's bridge). */
  const bridgeClients = new WeakSet<Client>();
  const bridges = opts.bridges.map(
    (cfg) =>
      new Bridge(cfg, {
        aedes,
        chain: opts.chain,
        logger: opts.logger,
        ...(opts.lmdb ? { lmdb: opts.lmdb } : {}),
        markInbound: (packet, bridge) => inboundOf.set(packet, bridge),
      }),
  );

  const innerPreConnect = aedes.preConnect;
  aedes.preConnect = (client, packet, callback) => {
    // `$bridge/<name>` is what plugins see for a bridge; a device may not pose as one (and gain its ACL rules).
    if (packet.clientId?.startsWith(BRIDGE_ID_PREFIX)) {
      refuseConnect(client, ConnackCode.IdentifierRejected);
      return callback(null, false);
    }
    const props = (packet as { properties?: { userProperties?: unknown } }).properties;
    if ((packet as { bridgeMode?: boolean }).bridgeMode || userPropertyValue(props?.userProperties, BRIDGE_USER_PROPERTY) !== undefined) bridgeClients.add(client);
    innerPreConnect.call(aedes, client, packet, callback);
  };

  if (bridges.some((b) => b.cfg.out.length)) {
    const innerPublish = aedes.publish.bind(aedes) as unknown as PublishFn;
    aedes.publish = function publish(packet: PublishPacket, client?: unknown, done?: unknown) {
      const cb = (typeof client === "function" ? client : done) as ((err?: Error) => void) | undefined;
      const from = typeof client === "function" || !client ? null : (client as Client);
      const cameFrom = inboundOf.get(packet);
      const bridged = cameFrom !== undefined || (from !== null && bridgeClients.has(from));
      let targets: Bridge[] | null = null;
      for (const b of bridges) {
        if (b === cameFrom || (bridged && !b.cfg.forwardBridged) || !b.wants(packet.topic)) continue;
        (targets ??= []).push(b);
      }
      if (!targets) return innerPublish(packet, from, cb);
      // Copies now: later layers may rewrite the packet object.
      const { topic, qos, retain } = packet;
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      const publisher = from?.id ?? "";
      let pending = targets.length + 1;
      let failure: Error | undefined;
      const settle = (err?: Error | null) => {
        if (err && !failure) failure = err;
        if (--pending === 0) cb?.(failure);
      };
      // MQTT 5 fields (inbound.ts keeps the expiry as an absolute deadline, `messageExpiry`).
      const v5 = packet as { properties?: Record<string, unknown>; messageExpiry?: number };
      const fields = v5.properties || v5.messageExpiry !== undefined ? { ...(v5.properties ? { properties: v5.properties } : {}), ...(v5.messageExpiry !== undefined ? { messageExpiry: v5.messageExpiry } : {}) } : undefined;
      for (const b of targets) b.offer(topic, payload, qos, retain, publisher, fields).then(() => settle(), settle);
      innerPublish(packet, from, settle);
    } as Aedes["publish"];
  }

  let guarded = false;
  const manager: BridgeManager = {
    bridges,
    installForwardGuard() {
      if (guarded) return;
      guarded = true;
      const innerForward = aedes.authorizeForward;
      aedes.authorizeForward = (client, packet) => {
        if (bridgeClients.has(client) && (packet as { clientId?: string }).clientId === client.id) return null;
        return innerForward.call(aedes, client, packet);
      };
    },
    start() {
      for (const b of bridges) b.start();
    },
    async close() {
      await Promise.all(bridges.map((b) => b.close()));
    },
  };
  managers.set(aedes, manager);
  return manager;
}
