/**
 * Many idle MQTT 3.1.1 clients over raw sockets, as cheaply as the generator
 * can open them: each client's CONNECT and SUBSCRIBE are copies of one
 * pre-encoded template with its number stamped in, written together in one
 * call right after the TCP connect ([MQTT-3.1.4-5]: a client may send further
 * packets before the CONNACK). The answer is checked byte for byte (CONNACK
 * accepted, SUBACK granting the QoS asked) without a parser per client, and
 * at most `concurrency` handshakes are under way at once, so the broker is
 * offered a steady stream of CONNECTs rather than a burst that overflows its
 * listen backlog.
 *
 * The keep alive is long enough that no PINGREQ is due while the bench holds
 * the connections; the broker still arms its keep-alive timer per client, as
 * it would for real devices.
 */
import { createConnection, type Socket } from "node:net";
import mqttPacket from "mqtt-packet";

export interface IdleClientsSpec {
  port: number;
  /** Clients to open. */
  count: number;
  /** Clients are numbered from here (warm-up clients and measured clients must not share ids). */
  firstIndex: number;
  /** Most handshakes (TCP connect → SUBACK) in progress at once. */
  concurrency: number;
  credentials: { username: string; password: string } | null;
  keepaliveSec: number;
  qos: 0 | 1;
}

/** Client ids: bench-idle-NNNNNNN (the auth plugin's bench pattern is `%u-*` with user "bench"). */
const ID_DIGITS = 7;
const ID_PREFIX = "bench-idle-";
/** Each client subscribes to its own command topic, the usual shape of a device fleet. */
export function idleTopic(index: number): string {
  return `bench/idle/${String(index).padStart(ID_DIGITS, "0")}/cmd`;
}

interface Template {
  bytes: Buffer;
  /** Offsets of the id digits in the CONNECT's client id and in the SUBSCRIBE's topic. */
  digitOffsets: [number, number];
  /** CONNACK (accepted, no session present) then SUBACK (packet id 1, the granted QoS). */
  expected: Buffer;
}

function template(spec: IdleClientsSpec): Template {
  const zero = "0".repeat(ID_DIGITS);
  const connect = mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clientId: ID_PREFIX + zero,
    clean: true,
    keepalive: spec.keepaliveSec,
    ...(spec.credentials ? { username: spec.credentials.username, password: Buffer.from(spec.credentials.password) } : {}),
  });
  const subscribe = mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: idleTopic(0), qos: spec.qos }] });
  const bytes = Buffer.concat([connect, subscribe]);
  const idAt = connect.indexOf(ID_PREFIX + zero) + ID_PREFIX.length;
  const topicAt = connect.length + subscribe.indexOf(idleTopic(0)) + "bench/idle/".length;
  const expected = Buffer.from([0x20, 0x02, 0x00, 0x00, 0x90, 0x03, 0x00, 0x01, spec.qos]);
  return { bytes, digitOffsets: [idAt, topicAt], expected };
}

function stamp(t: Template, index: number): Buffer {
  const b = Buffer.from(t.bytes);
  const digits = String(index).padStart(ID_DIGITS, "0");
  if (digits.length > ID_DIGITS) throw new Error(`client index ${index} does not fit ${ID_DIGITS} digits`);
  b.write(digits, t.digitOffsets[0], "latin1");
  b.write(digits, t.digitOffsets[1], "latin1");
  return b;
}

export interface OpenedIdleClients {
  sockets: Socket[];
  /** From the first TCP connect to the last SUBACK. */
  elapsedMs: number;
  /** Sockets that closed after their handshake completed (the broker dropped them). */
  dropped(): number;
  /** Clients that received anything after their SUBACK (an idle client is sent nothing). */
  unexpected(): number;
}

/**
 * Open `count` clients; resolves once every one has its CONNACK and SUBACK.
 * Rejects on the first refusal, unexpected answer or error (closing what it opened).
 */
export function openIdleClients(spec: IdleClientsSpec, timeoutMs = 600_000): Promise<OpenedIdleClients> {
  const t = template(spec);
  const sockets: Socket[] = [];
  let dropped = 0;
  let unexpected = 0;
  let next = 0;
  let done = 0;
  let failed = false;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`only ${done} of ${spec.count} clients completed CONNECT + SUBSCRIBE within ${timeoutMs / 1000} s`)), timeoutMs);
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      clearTimeout(timer);
      closeIdleClients(sockets);
      reject(err);
    };
    const openOne = () => {
      const index = spec.firstIndex + next++;
      const socket = createConnection({ port: spec.port, host: "127.0.0.1" });
      sockets.push(socket);
      let got: Buffer = Buffer.alloc(0);
      let complete = false;
      socket.setNoDelay(true);
      socket.once("connect", () => socket.write(stamp(t, index)));
      socket.on("error", (err) => {
        if (!complete) fail(new Error(`client ${index}: ${err.message}`));
      });
      socket.on("close", () => {
        if (complete) dropped++;
        else fail(new Error(`client ${index}: connection closed before CONNACK + SUBACK (got ${got.toString("hex") || "nothing"})`));
      });
      socket.on("data", (chunk: Buffer) => {
        if (complete) {
          unexpected++;
          return;
        }
        got = got.length ? Buffer.concat([got, chunk]) : chunk;
        if (got.length < t.expected.length) return;
        if (!got.equals(t.expected)) return fail(new Error(`client ${index}: expected CONNACK + SUBACK ${t.expected.toString("hex")}, got ${got.toString("hex")}`));
        complete = true;
        done++;
        if (done === spec.count) {
          clearTimeout(timer);
          failed = true; // settled: later events are counted, not failures
          resolve({ sockets, elapsedMs: performance.now() - started, dropped: () => dropped, unexpected: () => unexpected });
        } else if (next < spec.count) openOne();
      });
    };
    for (let i = 0; i < Math.min(spec.concurrency, spec.count); i++) openOne();
  });
}

/**
 * Close with a reset: the bench opens tens of thousands of sockets per run,
 * and a FIN close would leave each local port in TIME_WAIT for a minute.
 */
export function closeIdleClients(sockets: Socket[]): void {
  for (const s of sockets) {
    if (s.destroyed) continue;
    if (s.readyState === "open") s.resetAndDestroy();
    else s.destroy();
  }
}
