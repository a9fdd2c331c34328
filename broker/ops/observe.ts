/**
 * What the broker tells its operator about clients: one log line per connect,
 * refusal and disconnect (info), one per message only at trace, and the
 * counters in BrokerStats. The per-message work is an increment, plus a log
 * call only when trace is on.
 */
import type { Aedes, Client } from "aedes";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { usernameOf } from "../protocol/hooks.js";
import { LimitError } from "../protocol/limits.js";
import type { BrokerStats, LimitName } from "./stats.js";
import { observeOutgoing, type OutgoingPacket } from "../protocol/wire-tap.js";
import { inspectInbound } from "../protocol/inbound-tap.js";
import { existingStateOf, stateOf, type ClientState } from "../protocol/client-state.js";

interface ClientInternals {
  _parser: NodeJS.EventEmitter;
  _disconnected: boolean;
  clean: boolean;
  version: number;
}

/** aedes' own error messages for the limits it enforces itself. */
const AEDES_LIMIT_ERRORS: [RegExp, LimitName][] = [
  [/^connect did not arrive in time/, "connectTimeoutMs"],
  [/^maxInflightInbound exceeded/, "maxInflight"],
  [/^topic has too many levels/, "maxTopicLevels"],
  [/^Client queue limit reached/, "queueLimit"],
  [/^drain timeout/, "drainTimeoutMs"],
];

/** Errors that are the network's (or the shutdown's) doing, not the client's protocol. */
const NETWORK_ERRORS = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_STREAM_WRITE_AFTER_END",
]);
const NOT_PROTOCOL_ERRORS = new Set(["keep alive timeout", "connection closed"]);

export interface Observer {
  /** Wrap aedes' preConnect and listen to its client events; call after the other guards are installed. */
  install(): void;
  attachClient(client: Client, stream: Duplex, req?: IncomingMessage): void;
  /** Record why a client is being refused or closed (used by the guards). */
  noteReason(client: Client, reason: string): void;
  /** Remote address of a client ("ip:port"), or "" when unknown. */
  remoteOf(client: Client): string;
  connectedAt(client: Client): number | null;
}

/** "ip:port" of the client's socket, or "" when unknown (built on demand: a string per client costs memory while idle). */
function remoteOf(s: ClientState | undefined): string {
  if (!s) return "";
  const socket = (s.peerSocket ?? s.client.conn) as { remoteAddress?: string; remotePort?: number };
  const address = socket.remoteAddress;
  return address ? `${address}:${socket.remotePort}` : "";
}

export function createObserver(aedes: Aedes, stats: BrokerStats, logger: Logger): Observer {
  // The connection's story lives in its ClientState (protocol/client-state.ts), with every other layer's per-client fields.
  const sessions = { get: (client: Client): ClientState | undefined => existingStateOf(client) };
  const trace = logger.isLevelEnabled("trace");
  // The remote address is read from the socket when a line or the admin API needs it. A closed socket
  // no longer knows its peer unless it was asked while open (Node caches the answer): asked at attach,
  // only when the connect/disconnect lines are logged at all.
  const infoLogged = logger.isLevelEnabled("info");
  const debug = logger.isLevelEnabled("debug");

  function install(): void {
    const innerPreConnect = aedes.preConnect;
    aedes.preConnect = (client, packet, callback) => {
      const s = sessions.get(client);
      if (s) {
        s.connectClientId = packet.clientId ?? "";
        s.connectUsername = packet.username ?? null;
      }
      innerPreConnect.call(aedes, client, packet, callback);
    };

    // A plugin's refusal reaches aedes as an error after the CONNACK is built: note it first.
    const innerAuthenticate = aedes.authenticate;
    aedes.authenticate = (client, username, password, done) => {
      innerAuthenticate.call(aedes, client, username, password, (err, ok) => {
        if (err) {
          const s = sessions.get(client);
          if (s && !s.reason) s.reason = err.message;
        }
        done(err, ok);
      });
    };

    aedes.on("client", (client) => {
      const s = sessions.get(client);
      if (s) s.connectedAt = Date.now();
      if (aedes.connectedClients > stats.maxClients) stats.maxClients = aedes.connectedClients;
      const c = client as unknown as ClientInternals;
      // The line's fields only when it is logged: reading the remote address makes Node cache the peer on the socket.
      if (infoLogged) logger.info({ clientId: client.id, username: usernameOf(client), remote: remoteOf(s), clean: c.clean, protocol: c.version }, "client connected");
    });

    aedes.on("clientDisconnect", (client) => {
      stats.disconnects++;
      const s = sessions.get(client);
      const reason = s?.reason ?? ((client as unknown as ClientInternals)._disconnected ? "client sent DISCONNECT" : "connection closed");
      if (!infoLogged) return;
      logger.info(
        { clientId: client.id, username: usernameOf(client), remote: remoteOf(s), reason, connectedMs: s ? Date.now() - s.connectedAt : undefined },
        "client disconnected",
      );
    });

    const onError = (client: Client, err: Error) => {
      const s = sessions.get(client);
      if (s && !s.reason) s.reason = err.message;
      const code = (err as NodeJS.ErrnoException).code;
      if (err instanceof LimitError || (code && NETWORK_ERRORS.has(code))) return; // limits count themselves
      if (s) {
        if (s.counted) return;
        s.counted = true;
      }
      const limit = AEDES_LIMIT_ERRORS.find(([re]) => re.test(err.message));
      if (limit) stats.limitRejections[limit[1]]++;
      else if (!NOT_PROTOCOL_ERRORS.has(err.message)) stats.protocolErrors++;
      if (debug) logger.debug({ clientId: client.id ?? s?.connectClientId ?? undefined, remote: remoteOf(s), err: err.message }, "client error");
    };
    aedes.on("clientError", onError);
    aedes.on("connectionError", onError);
    aedes.on("keepaliveTimeout", (client) => {
      const s = sessions.get(client);
      if (s && !s.reason) s.reason = "keep alive timeout";
    });
  }

  // Shared by every client (a closure per client would stay alive as long as the connection):
  // aedes names the client on its parser (`parser.client`) and on its stream (`conn.client`).
  function countIncoming(this: { client: Client }, packet: { cmd: string; qos?: number; topic?: string; retain?: boolean; payload?: Buffer }): void {
    const client = this.client;
    stats.packetsReceived++;
    if (packet.cmd !== "publish") return;
    stats.publishReceived[packet.qos as 0 | 1 | 2]++;
    if (trace) {
      logger.trace(
        { clientId: client.id, topic: packet.topic, qos: packet.qos, retain: packet.retain, bytes: packet.payload?.length ?? 0 },
        "publish received",
      );
    }
  }

  function countOutgoing(packet: OutgoingPacket, stream: object): void {
    const client = (stream as { client: Client }).client;
    stats.packetsSent++;
    if (packet.cmd === "publish") {
      stats.publishSent[(packet.qos ?? 0) as 0 | 1 | 2]++;
      if (trace) logger.trace({ clientId: client.id, topic: packet.topic, qos: packet.qos ?? 0, retain: !!packet.retain }, "publish sent");
    } else if (packet.cmd === "connack") {
      if (packet.returnCode === 0) {
        stats.connectsAccepted++;
        return;
      }
      stats.connectsRefused++;
      if (!infoLogged) return;
      const s = sessions.get(client);
      logger.info(
        { clientId: s?.connectClientId ?? client.id, username: s?.connectUsername ?? usernameOf(client), remote: remoteOf(s), returnCode: packet.returnCode, reason: s?.reason ?? undefined },
        "client refused",
      );
    }
  }

  return {
    install,
    attachClient(client, stream, req) {
      const s = stateOf(client);
      s.connectedAt = Date.now();
      if (req?.socket && req.socket !== stream) s.peerSocket = req.socket;
      if (infoLogged) void (req?.socket ?? (stream as { remoteAddress?: string })).remoteAddress;
      inspectInbound(client, countIncoming);
      observeOutgoing(stream, countOutgoing);
    },
    noteReason(client, reason) {
      const s = sessions.get(client);
      if (s && !s.reason) s.reason = reason;
    },
    remoteOf(client) {
      return remoteOf(sessions.get(client));
    },
    connectedAt(client) {
      return sessions.get(client)?.connectedAt ?? null;
    },
  };
}
