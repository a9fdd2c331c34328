// Shared by the bridge suites: a real Mosquitto upstream that can be frozen
// (SIGSTOP), resumed and restarted on the same port, an edge wasmq run as a
// CLI child (so it can be kill -9'd), and a tally of what reached the upstream.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { Writable } from "node:stream";
import { pino } from "pino";
import { parseRawConfig, resolveConfig, type RawConfig } from "../broker/config.js";
import { startBroker, type RunningBroker } from "../broker/server.js";
import { MOSQUITTO_BIN, spawnMosquitto } from "../bench/mosquitto.js";
import { CliBroker, type ListenerPorts, type LogLine } from "./broker-support.js";
import { freePort } from "./helpers.js";

export const MOSQUITTO = MOSQUITTO_BIN;
export const hasMosquitto = existsSync(MOSQUITTO);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Mosquitto upstream on a fixed port (restartable there), persistence in `dir`. */
export class Mosquitto {
  child: ChildProcess | null = null;
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly extra: string[],
  ) {}

  static async start(dir: string, extra: string[] = [], port?: number): Promise<Mosquitto> {
    const m = new Mosquitto(dir, port ?? (await freePort()), extra);
    await m.start();
    return m;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const hasListener = this.extra.some((l) => l.startsWith("listener "));
    this.child = await spawnMosquitto(join(this.dir, `mosquitto-${this.port}.conf`), [
      ...(hasListener ? [] : [`listener ${this.port} 127.0.0.1`]),
      "allow_anonymous true",
      // As root, Mosquitto switches to the "mosquitto" user, which cannot write the temp dir.
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      "persistence true",
      `persistence_location ${this.dir}/`,
      `persistence_file mosquitto-${this.port}.db`,
      "max_queued_messages 1000000",
      "max_queued_bytes 0",
      "log_dest stderr",
      "log_type error",
      ...this.extra,
    ], this.port);
  }

  /** Freeze: TCP stays open (the kernel still accepts), nothing is answered. */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  resume(): void {
    this.child?.kill("SIGCONT");
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill("SIGCONT");
    c.kill(signal);
    await once(c, "exit");
    this.child = null;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/** The edge broker as a CLI child. */
export class Edge {
  cli: CliBroker | null = null;
  ports: ListenerPorts | null = null;
  constructor(readonly configFile: string) {}

  async start(): Promise<void> {
    this.cli = new CliBroker(["--config", this.configFile]);
    this.ports = await this.cli.ready();
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.ports!.tcp}`;
  }

  async kill9(): Promise<void> {
    await this.cli?.stop("SIGKILL");
  }

  async stop(): Promise<void> {
    await this.cli?.stop("SIGTERM");
  }
}

/** A persistent subscriber counting every copy of every payload it receives. */
export class Tally {
  readonly counts = new Map<string, number>();
  total = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  private constructor(readonly client: MqttClient) {}

  static async start(url: string, filter: string, opts: IClientOptions = {}, qos: 1 | 2 = 1): Promise<Tally> {
    const client = mqtt.connect(url, { clientId: `tally-${Math.random().toString(36).slice(2)}`, clean: false, reconnectPeriod: 300, connectTimeout: 3000, ...opts });
    const tally = new Tally(client);
    client.on("error", () => {});
    client.on("message", (_topic, payload) => {
      const key = payload.toString();
      tally.counts.set(key, (tally.counts.get(key) ?? 0) + 1);
      tally.total++;
      tally.waiters = tally.waiters.filter((w) => (tally.counts.size >= w.n ? (w.resolve(), false) : true));
    });
    await new Promise((resolve) => client.once("connect", resolve));
    await client.subscribeAsync(filter, { qos });
    return tally;
  }

  get distinct(): number {
    return this.counts.size;
  }

  get duplicates(): number {
    return this.total - this.counts.size;
  }

  /** Wait for `n` distinct payloads (a generous safety timeout, not a speed assertion). */
  waitDistinct(n: number, timeoutMs = 120_000): Promise<void> {
    if (this.counts.size >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${this.counts.size} distinct of ${n} (total ${this.total})`)), timeoutMs);
      this.waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  async end(): Promise<void> {
    await this.client.endAsync(true).catch(() => {});
  }
}

/** Publish `count` QoS 1 (or 2) messages `${prefix}${i}` on topic(i), resolving when every PUBACK arrived. */
export async function publishAll(url: string, count: number, topic: (i: number) => string, prefix = "m", from = 0, qos: 1 | 2 = 1): Promise<void> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, clientId: `pub-${Math.random().toString(36).slice(2)}` });
  await new Promise((resolve) => client.once("connect", resolve));
  // In batches: the broker allows 100 inbound QoS 2 messages awaiting PUBREL (limits.maxInflight).
  for (let start = from; start < from + count; start += 50) {
    const sends: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(start + 50, from + count); i++) sends.push(client.publishAsync(topic(i), `${prefix}${i}`, { qos }));
    await Promise.all(sends);
  }
  await client.endAsync();
}

/** Bridge keys that make failure detection quick in tests. */
export const FAST = { keepaliveSec: 2, connectTimeoutMs: 1500, ackTimeoutMs: 2000, reconnectMinMs: 100, reconnectMaxMs: 800 };

/** An in-process broker whose log lines are kept (JSON objects), on ephemeral ports, with its own data dir. */
export async function startLoggedBroker(raw: RawConfig, dataDir: string): Promise<{ broker: RunningBroker; lines: LogLine[]; url: string; waitLine(re: RegExp): Promise<LogLine> }> {
  const lines: LogLine[] = [];
  const waiters: { re: RegExp; resolve: (l: LogLine) => void }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString().split("\n")) {
        if (!text.trim()) continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        for (const w of [...waiters]) if (w.re.test(line.msg)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
      }
      cb();
    },
  });
  const config = resolveConfig(parseRawConfig({ port: 0, ws: false, data: dataDir, sys: false, ...raw }, "test config"), null);
  const broker = await startBroker(config, { logger: pino({ level: "debug" }, sink) });
  return {
    broker,
    lines,
    url: `mqtt://127.0.0.1:${broker.port("tcp")}`,
    waitLine(re: RegExp) {
      const seen = lines.find((l) => re.test(l.msg));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log line matching ${re}`)), 60_000);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

/** Poll a condition (state reached, not a speed check); rejects after a generous safety timeout. */
export async function until(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** An upstream broker a bridge connects to, started for one test. */
export interface Upstream {
  url: string;
  port: number;
  stop(): Promise<void>;
}

let upstreamCount = 0;

/**
 * The two upstream kinds the bridge suites run against: a real Mosquitto
 * (when installed) and another wasmq, each with its own directory under `dir`.
 * [name, start, available].
 */
export function upstreamKinds(dir: string): [string, () => Promise<Upstream>, boolean][] {
  return [
    [
      "Mosquitto",
      async () => {
        const mdir = join(dir, `mq-${upstreamCount++}`);
        mkdirSync(mdir, { recursive: true });
        const m = await Mosquitto.start(mdir);
        return { url: m.url, port: m.port, stop: async () => (await m.stop(), rmSync(m.dir, { recursive: true, force: true })) };
      },
      hasMosquitto,
    ],
    [
      "wasmq",
      async () => {
        const b = await startLoggedBroker({}, join(dir, `cloud-${upstreamCount++}`));
        return { url: b.url, port: b.broker.port("tcp")!, stop: () => b.broker.close() };
      },
      true,
    ],
  ];
}
