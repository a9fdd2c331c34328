/**
 * MQTT 5 enhanced authentication (MQTT 5.0 section 4.12, AUTH packet 3.15),
 * delegated to the plugin that declared the Authentication Method
 * (host/abi-auth.ts). aedes 1.2 knows nothing of AUTH: the exchange runs
 * here, inside preConnect, so aedes does not go on with the CONNECT (its
 * authenticate and connect hook, session, takeover) until the plugin said
 * Success; then the CONNECT is handed over as any other (connect.ts).
 *
 *  - CONNECT with an Authentication Method no plugin declared: CONNACK 0x8C
 *    ([MQTT-4.12.0-1] the Server does not support it).
 *  - The plugin answers each step: Continue → AUTH 0x18 with its data
 *    ([MQTT-4.12.0-2]); Success → CONNACK 0x00 carrying the CONNECT's method
 *    ([MQTT-4.12.0-5]) and the plugin's final data; Failure → CONNACK with its
 *    reason code, and close ([MQTT-4.12.0-4]).
 *  - The client's AUTH must carry reason code 0x18 during an exchange
 *    ([MQTT-4.12.0-3]) and the CONNECT's method ([MQTT-4.12.0-5]); until CONNACK
 *    it may send only AUTH or DISCONNECT ([MQTT-3.1.2-30]). Anything else is a
 *    Protocol Error (CONNACK 0x82 before CONNACK, DISCONNECT 0x82 after).
 *  - AUTH from a client whose CONNECT had no Authentication Method: Protocol
 *    Error, DISCONNECT 0x82 ([MQTT-4.12.0-7] the Client must not send AUTH).
 *  - Re-authentication ([MQTT-4.12.1-1]): AUTH 0x19 after CONNACK with the same
 *    method starts a new exchange (a different one is a Protocol Error, 0x82);
 *    Success → AUTH 0x00, Failure → DISCONNECT with the plugin's code and close
 *    ([MQTT-4.12.1-2]; a CONNACK-only code such as 0x86 becomes 0x87). Other
 *    packets keep flowing meanwhile (section 4.12.1).
 *  - An exchange not finished within `mqtt5.authTimeoutMs` (default: the
 *    connect timeout) fails with 0x87 (CONNACK, or DISCONNECT on re-authentication).
 *  - The authenticated identity (ABI v2-r4, `set_auth_identity`): a Success may
 *    name the user the client proved to be. It becomes the client's username
 *    (hooks.ts: ACL %u, deliver records, admin API, logs). A CONNECT User Name
 *    that differs is refused with CONNACK 0x86 Bad User Name or Password (MQTT 5.0
 *    section 3.2.2.2: "The Server does not accept the User Name or Password
 *    specified by the Client"), for every auth plugin alike. A re-authentication
 *    that names another identity than the connection has is a failed
 *    re-authentication: DISCONNECT 0x87 Not authorized and close
 *    ([MQTT-4.12.1-2]; DISCONNECT cannot carry 0x86, section 3.14.2.1) — an
 *    identity never changes under a live session.
 *
 * AUTH packets never reach aedes (it would close the connection on an unknown
 * packet): the parser's packet events are filtered here.
 */
import type { Client } from "aedes";
import type { Duplex } from "node:stream";
import { AuthStep, emptyMessage, emptyV5, type AuthOutcome, type PluginChain } from "../../../host/index.js";
import { mqttPacket } from "../mqtt.js";
import { disconnectWith } from "./disconnect.js";
import { userPropertiesOf } from "./plugin-fields.js";
import { checkPacketProperties } from "./properties.js";
import { Reason } from "./reason-codes.js";
import { scrubSecret } from "../secrets.js";
import { existingStateOf } from "../client-state.js";
import { tlsExporterOf } from "./channel-binding.js";
import type { V5Connection } from "./state.js";

/** How the CONNECT in preConnect goes on once its exchange is decided (connect.ts). */
export interface PendingConnect {
  /** Success: hand the CONNECT to aedes. */
  admit(): void;
  /** CONNACK with `reasonCode` (0x80 and above) and close. */
  refuse(reasonCode: number, reason: string): void;
}

export interface EnhancedAuthOptions {
  /** The plugin chain; null: no plugin, every method is refused with 0x8C. */
  chain: PluginChain | null;
  /** Longest an exchange (from CONNECT or AUTH 0x19 to its last step) may take, ms. */
  timeoutMs: number;
  onViolation(client: Client, reason: string): void;
}

interface ConnectPacket {
  clientId: string;
  username?: string;
  password?: Buffer;
  properties?: Record<string, unknown>;
}

interface AuthPacket {
  cmd: string;
  reasonCode?: number;
  properties?: Record<string, unknown>;
}

interface Exchange {
  readonly method: string;
  /** connect: before CONNACK; reauth: a re-authentication in progress; done: idle after success. */
  phase: "connect" | "reauth" | "done";
  /** What the plugin kept between steps (abi-auth.ts); null: none. */
  kept: Uint8Array | null;
  timer: NodeJS.Timeout | null;
  readonly identity: { clientId: string; username: string | null; password: Uint8Array | null };
  readonly pending: PendingConnect | null;
}

/** DISCONNECT reason codes (MQTT 5.0 section 3.14.2.1) a CONNACK code may stand for; the others become 0x87. */
const DISCONNECT_CODES = new Set<number>([0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f]);

export class EnhancedAuth {
  private readonly exchanges = new WeakMap<V5Connection, Exchange>();

  constructor(private readonly opts: EnhancedAuthOptions) {}

  /** Whether a plugin runs `method`. */
  offers(method: string): boolean {
    return this.opts.chain?.authenticator(method) != null;
  }

  /** Every v5 connection: its AUTH packets are handled here and never reach aedes. */
  attach(state: V5Connection): void {
    const parser = (state.client as unknown as { _parser: NodeJS.EventEmitter })._parser;
    const emit = parser.emit;
    const client = state.client as unknown as { connackSent?: boolean };
    // On the per-packet path of every v5 connection: no rest arguments, one property read in the common case.
    parser.emit = function (this: NodeJS.EventEmitter, event: string | symbol, packet?: AuthPacket) {
      if (event === "packet" && packet) {
        if (packet.cmd === "auth") {
          self.onAuthPacket(state, packet);
          return true;
        }
        if (!client.connackSent && packet.cmd !== "disconnect" && self.exchanges.get(state)?.phase === "connect") {
          // [MQTT-3.1.2-30] nothing but AUTH or DISCONNECT until CONNACK
          self.protocolError(state, self.exchanges.get(state), Reason.ProtocolError, `${packet.cmd.toUpperCase()} before the enhanced authentication finished`);
          return true;
        }
      }
      // eslint-disable-next-line prefer-rest-params
      return arguments.length > 2 ? emit.apply(this, arguments as unknown as [string, ...unknown[]]) : emit.call(this, event, packet);
    } as typeof parser.emit;
    const self = this;
    (state.client.conn as Duplex).once("close", () => {
      const ex = this.exchanges.get(state);
      if (ex) this.stopTimer(ex);
      // A client that left mid-exchange: its password has no reader any more.
      if (ex?.phase === "connect") scrubSecret(ex.identity.password);
    });
  }

  /** CONNECT with an Authentication Method a plugin offers: the first step; `pending` goes on once decided. */
  begin(state: V5Connection, packet: ConnectPacket, pending: PendingConnect): void {
    const props = packet.properties ?? {};
    const ex: Exchange = {
      method: props.authenticationMethod as string,
      phase: "connect",
      kept: null,
      timer: null,
      identity: { clientId: packet.clientId, username: packet.username ?? null, password: packet.password ?? null },
      pending,
    };
    this.exchanges.set(state, ex);
    this.startTimer(state, ex);
    this.step(state, ex, AuthStep.start, props);
  }

  private onAuthPacket(state: V5Connection, packet: AuthPacket): void {
    const ex = this.exchanges.get(state);
    const bad = checkPacketProperties(packet);
    if (bad) return this.protocolError(state, ex, bad.reasonCode, bad.reason);
    if (!ex) return this.protocolError(state, ex, Reason.ProtocolError, "AUTH from a client whose CONNECT had no Authentication Method");
    const props = packet.properties ?? {};
    if (props.authenticationMethod !== ex.method) {
      return this.protocolError(state, ex, Reason.ProtocolError, `AUTH with Authentication Method ${JSON.stringify(props.authenticationMethod)}, not ${JSON.stringify(ex.method)} as in CONNECT`);
    }
    const code = packet.reasonCode ?? 0;
    if (ex.phase === "done") {
      if (code !== Reason.ReAuthenticate) return this.protocolError(state, ex, Reason.ProtocolError, `AUTH reason code 0x${code.toString(16)} outside an exchange (re-authentication starts with 0x19)`);
      ex.phase = "reauth";
      this.startTimer(state, ex);
      return this.step(state, ex, AuthStep.reauthenticate, props);
    }
    if (code !== Reason.ContinueAuthentication) return this.protocolError(state, ex, Reason.ProtocolError, `AUTH reason code 0x${code.toString(16)} during an exchange (expected 0x18)`);
    this.step(state, ex, AuthStep.continue, props);
  }

  /** One step through the plugin, and its answer on the wire. */
  private step(state: V5Connection, ex: Exchange, step: number, props: Record<string, unknown>): void {
    const slot = this.opts.chain?.authenticator(ex.method);
    if (!slot) return this.fail(state, ex, Reason.BadAuthenticationMethod, `no plugin runs Authentication Method ${JSON.stringify(ex.method)} any more`);
    const m = emptyMessage();
    m.topic = ex.method;
    const data = props.authenticationData;
    if (Buffer.isBuffer(data)) m.payload = data;
    m.clientId = ex.identity.clientId;
    // Re-authentication: the username the connection has now (the identity of its first exchange, if one was named).
    m.username = ex.phase === "connect" ? ex.identity.username : (existingStateOf(state.client)?.username ?? null);
    m.password = ex.identity.password;
    m.flags = step;
    m.v5 = { ...emptyV5(5), userProperties: userPropertiesOf(props) };
    m.authState = ex.kept;
    m.tlsExporter = tlsExporterOf(state.client.conn);
    const out = slot.runAuth(m);
    // The client's authentication data was read by the plugin, its only reader.
    scrubSecret(data);
    if (out.state !== null) ex.kept = out.state.length > 0 ? out.state : null;
    if (out.result === "continue") return this.send(state, Reason.ContinueAuthentication, ex.method, out.data);
    if (out.result === "failure") return this.fail(state, ex, out.reasonCode, refusalReason(out));
    this.stopTimer(ex);
    const named = out.identity;
    if (ex.phase === "connect") {
      const sent = ex.identity.username;
      if (named !== null && sent !== null && sent !== named) {
        // MQTT 5.0 section 3.2.2.2, 0x86: the Server does not accept the User Name the Client specified
        return this.fail(state, ex, Reason.BadUserNameOrPassword, `the CONNECT's User Name ${JSON.stringify(sent)} is not the authenticated identity ${JSON.stringify(named)}`);
      }
      ex.phase = "done";
      // The connect hook, which runs next, is the password's last reader and zeroes it
      // (hooks.ts); re-authentication steps see no password.
      ex.identity.password = null;
      state.enhancedAuth = { method: ex.method, data: out.data, identity: named };
      ex.pending!.admit();
      return;
    }
    const current = existingStateOf(state.client)?.username ?? null;
    if (named !== null && named !== current) {
      // [MQTT-4.12.1-2] a failed re-authentication: DISCONNECT (0x87, 0x86 is CONNACK-only) and close
      return this.fail(state, ex, Reason.NotAuthorized, `re-authentication as ${JSON.stringify(named)}, but the connection is authenticated as ${current === null ? "no user" : JSON.stringify(current)}`);
    }
    ex.phase = "done";
    this.send(state, Reason.Success, ex.method, out.data);
  }

  private fail(state: V5Connection, ex: Exchange, reasonCode: number, reason: string): void {
    this.stopTimer(ex);
    this.opts.onViolation(state.client, reason);
    if (ex.phase === "connect") {
      ex.phase = "done";
      scrubSecret(ex.identity.password);
      ex.identity.password = null;
      ex.pending!.refuse(reasonCode, reason);
      return;
    }
    disconnectWith(state.client, DISCONNECT_CODES.has(reasonCode) ? reasonCode : Reason.NotAuthorized, reason);
  }

  /** A malformed or unexpected AUTH: CONNACK before the exchange is decided, DISCONNECT after. */
  protocolError(state: V5Connection, ex: Exchange | undefined, reasonCode: number, reason: string): void {
    if (ex?.phase === "connect") return this.fail(state, ex, reasonCode, reason);
    if (ex) this.stopTimer(ex);
    this.opts.onViolation(state.client, reason);
    disconnectWith(state.client, reasonCode, reason);
  }

  private send(state: V5Connection, reasonCode: number, method: string, data: Uint8Array | null): void {
    const properties: Record<string, unknown> = { authenticationMethod: method };
    if (data !== null) properties.authenticationData = Buffer.from(data);
    const conn = state.client.conn as Duplex;
    if (conn.destroyed) return;
    mqttPacket.writeToStream({ cmd: "auth", reasonCode, properties }, conn);
  }

  private startTimer(state: V5Connection, ex: Exchange): void {
    this.stopTimer(ex);
    const ms = this.opts.timeoutMs;
    ex.timer = setTimeout(() => {
      ex.timer = null;
      if (ex.phase !== "done") this.fail(state, ex, Reason.NotAuthorized, `enhanced authentication not completed within ${ms} ms`);
    }, ms);
    ex.timer.unref();
  }

  private stopTimer(ex: Exchange): void {
    if (ex.timer) clearTimeout(ex.timer);
    ex.timer = null;
  }
}

/** What the client is told: the plugin's reason string, else a plain one (the plugin's name stays in the logs). */
function refusalReason(out: AuthOutcome): string {
  if (out.reasonString !== null) return out.reasonString;
  return out.failed ? `authentication could not be completed (plugin ${out.plugin} failed)` : `authentication failed (plugin ${out.plugin})`;
}
