import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { pino } from "pino";
import { parseRawConfig, resolveConfig, type RawConfig } from "../broker/config.js";
import { startBroker, type RunningBroker } from "../broker/server.js";

/** Repository root (tests run from dist/test/). */
export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
export const PLUGINS = join(ROOT, "dist/plugins");
export const CLI = join(ROOT, "dist/broker/cli.js");

/**
 * Safety net for waits on something that must happen (a CONNACK, messages):
 * it only stops a hang. Shorter fixed timeouts (5 s, 10 s) failed suites when
 * the shared machine was loaded (load 12–23).
 */
export const SAFETY_MS = 30_000;

export function wasm(name: string): string {
  return join(PLUGINS, `${name}.wasm`);
}
export function native(name: string): string {
  return join(ROOT, `dist/plugins-as/${name}/native.js`);
}

export function tempDir(prefix = "wasmq-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const scratchDirs: string[] = [];
/** A temporary folder removed when the test process exits. */
export function scratchDir(prefix?: string): string {
  if (scratchDirs.length === 0) process.once("exit", () => scratchDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const dir = tempDir(prefix);
  scratchDirs.push(dir);
  return dir;
}

/** Run `wasmq admin ...` (the real CLI) and collect its exit code and output. */
export function adminCli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, "admin", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => resolve({ code, out, err }));
  });
}

export interface TestBroker extends RunningBroker {
  url: string;
  dataDir: string;
  /** Close and remove the data directory. */
  stop(): Promise<void>;
}

/**
 * An in-process broker on ephemeral ports with its own LMDB directory (or
 * in-memory persistence), logging nowhere unless WASMQ_TEST_LOG is set.
 */
export async function startTestBroker(raw: RawConfig = {}, opts: { dataDir?: string; meterFuel?: boolean } = {}): Promise<TestBroker> {
  const dataDir = opts.dataDir ?? tempDir();
  const parsed = parseRawConfig({ port: 0, ws: { port: 0 }, data: dataDir, sys: false, ...raw }, "test config");
  const config = resolveConfig(parsed, null);
  const logger = pino({ level: process.env.WASMQ_TEST_LOG ?? "silent" });
  const broker = await startBroker(config, { logger, ...(opts.meterFuel !== undefined ? { meterFuel: opts.meterFuel } : {}) });
  const url = `mqtt://127.0.0.1:${broker.port("tcp")}`;
  return Object.assign(broker, {
    url,
    dataDir,
    async stop() {
      await broker.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

export async function connect(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: SAFETY_MS, ...opts });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", (err) => reject(err));
    client.once("close", () => reject(new Error("connection closed before CONNACK")));
  });
  client.removeAllListeners("error");
  client.on("error", () => {});
  return client;
}

/** Connect expecting a refusal; resolves to the CONNACK return code. */
export function connectRefused(url: string, opts: IClientOptions = {}): Promise<number> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: SAFETY_MS, ...opts });
  return new Promise((resolve, reject) => {
    client.once("connect", () => {
      client.end(true);
      reject(new Error("connection was accepted"));
    });
    client.once("error", (err: Error & { code?: number }) => {
      client.end(true);
      resolve(err.code ?? -1);
    });
  });
}

export interface Received {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
}

/** Collect messages on a client; `next(n)` waits for n more (with a generous safety timeout, not a speed assertion). */
export function collect(client: MqttClient) {
  const messages: Received[] = [];
  let waiters: { count: number; resolve: () => void }[] = [];
  client.on("message", (topic, payload, packet) => {
    if (topic.startsWith(SETTLE_PREFIX)) return;
    messages.push({ topic, payload, qos: packet.qos, retain: packet.retain });
    waiters = waiters.filter((w) => {
      if (messages.length >= w.count) {
        w.resolve();
        return false;
      }
      return true;
    });
  });
  return {
    messages,
    /** Wait until at least `count` messages have arrived in total. */
    waitFor(count: number, timeoutMs = SAFETY_MS): Promise<Received[]> {
      if (messages.length >= count) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count} messages, got ${messages.length}: ${JSON.stringify(messages.map((m) => m.topic))}`)), timeoutMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(messages);
          },
        });
      });
    },
  };
}

/** Subscribe and resolve to the granted QoS per filter (128 = refused; mqtt.js reports that as an error). */
export function subscribe(client: MqttClient, filter: string | string[], qos: 0 | 1 | 2 = 0): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(filter, { qos }, (err, granted) => {
      const suback = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted;
      if (suback) return resolve(suback.map((g) => (typeof g === "number" ? g : (g as { qos: number }).qos)));
      if (err) return reject(err);
      resolve((granted ?? []).map((g) => g.qos));
    });
  });
}

const SETTLE_PREFIX = "wasmq-test/settle/";

/** Let in-flight packets settle: a round trip through the broker on a control topic. */
export async function settle(client: MqttClient): Promise<void> {
  const topic = `${SETTLE_PREFIX}${Math.random().toString(36).slice(2)}`;
  const got = new Promise<void>((resolve) => {
    const onMessage = (t: string) => {
      if (t === topic) {
        client.off("message", onMessage);
        resolve();
      }
    };
    client.on("message", onMessage);
  });
  await client.subscribeAsync(topic, { qos: 1 });
  await client.publishAsync(topic, "x", { qos: 1 });
  await got;
  await client.unsubscribeAsync(topic);
}

export async function end(...clients: (MqttClient | undefined)[]): Promise<void> {
  await Promise.all(clients.map((c) => c?.endAsync(true).catch(() => {})));
}

/** Connect with the collector attached first: a returning session's queue arrives right after CONNACK. */
export async function connectCollecting(url: string, opts: IClientOptions): Promise<{ client: MqttClient; got: ReturnType<typeof collect> }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: SAFETY_MS, ...opts });
  const got = collect(client);
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  client.removeAllListeners("error");
  client.on("error", () => {});
  return { client, got };
}

/** Wait until the broker itself has let go of a client (the socket closing on the client's side comes first). */
export async function brokerForgot(broker: RunningBroker, clientId: string): Promise<void> {
  const clients = (broker.aedes as unknown as { clients: Record<string, unknown> }).clients;
  for (let i = 0; i < 500 && clientId in clients; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(!(clientId in clients), `broker still holds ${clientId}`);
}

/** A TCP port that was free a moment ago (for tests that must name one). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * Runs `node ARGS` from the repository root in its own process and collects
 * its exit code (1 when it was killed or could not start) and output.
 */
export function runNode(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
