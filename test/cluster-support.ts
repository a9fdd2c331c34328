/**
 * Real parts for the cluster tests: a Debian `redis-server` on a free port with
 * persistence off, and wasmq nodes as separate CLI processes (so kill -9 is
 * real), each on its own data dir, found through their start-up log lines.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { CLI, freePort, tempDir } from "./helpers.js";

export interface RedisServer {
  port: number;
  url: string;
  /** A client for the test's own checks (CLIENT KILL, key reads). */
  client(): Redis;
  stop(): Promise<void>;
  /** Kill and start again on the same port: persistence is off, so Redis comes back empty. */
  restart(downMs?: number): Promise<void>;
  /** Kill it (SIGKILL) / start it again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** SIGSTOP / SIGCONT: connections stay open and nothing answers (a hung Redis). */
  freeze(): void;
  thaw(): void;
}

/**
 * Poll `check` until it holds. A check that throws (the admin API answering
 * 503 while a node reconnects to Redis, a refused connection) counts as "not
 * yet": the condition is what is waited on, not the first answer. The timeout
 * is a safety net against a hang on a loaded machine, not a speed requirement.
 */
async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
      lastError = null;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}${lastError ? ` (last check failed: ${(lastError as Error).message ?? lastError})` : ""}`);
}
export { waitFor };

class ExitedEarly extends Error {}

export async function startRedis(extraArgs: string[] = [], password?: string, username?: string): Promise<RedisServer> {
  let port = await freePort();
  let child: ChildProcess;
  const clients: Redis[] = [];
  /**
   * Start redis-server on `port` and wait for its PONG. A server that exits
   * first (its port taken between freePort() and its bind by another suite's
   * listener) fails at once, rather than leaving a probe retrying a dead port:
   * with the offline queue off, a PING sent while nothing listens is refused
   * instead of waiting forever, so the wait below always ends.
   */
  const launch = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", ...extraArgs], { stdio: "ignore" });
    const started = child;
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 50, enableOfflineQueue: false, ...(password ? { password } : {}), ...(username ? { username } : {}) });
    probe.on("error", () => {});
    try {
      await probe.connect().catch(() => {});
      const exited = () => started.exitCode !== null || started.signalCode !== null;
      await waitFor(async () => exited() || (await probe.ping().catch(() => "")) === "PONG", "redis-server to answer");
      if (exited()) throw new ExitedEarly(`redis-server on port ${port} exited (${started.exitCode ?? started.signalCode}) before answering`);
    } finally {
      probe.disconnect();
    }
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await once(child, "exit");
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (!(err instanceof ExitedEarly) || attempt === 3) throw err;
      port = await freePort();
    }
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client() {
      const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: null, ...(password ? { password } : {}), ...(username ? { username } : {}) });
      c.on("error", () => {});
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await kill();
    },
    down: () => kill(),
    up: () => launch(),
    freeze: () => void child.kill("SIGSTOP"),
    thaw: () => void child.kill("SIGCONT"),
    async restart(downMs = 500) {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
  };
}

export interface Node {
  id: string;
  port: number;
  url: string;
  admin: string;
  dataDir: string;
  child: ChildProcess;
  log(): string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
  /** GET (or another method) on the admin API, JSON back. */
  api<T = Record<string, unknown>>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
}

export interface NodeOptions {
  /** Extra config keys (merged over the defaults). */
  config?: Record<string, unknown>;
  /** Extra keys of "cluster". */
  cluster?: Record<string, unknown>;
  dataDir?: string;
  args?: string[];
}

const running = new Set<Node>();
const START_SAFETY_MS = 180_000;

/** Start a node via the CLI; resolves once its MQTT and admin listeners are up. */
export async function startNode(redis: RedisServer | string, id: string | null, opts: NodeOptions = {}): Promise<Node> {
  const dataDir = opts.dataDir ?? tempDir("wasmq-cluster-");
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, "config.json");
  const url = typeof redis === "string" ? redis : redis.url;
  writeFileSync(
    file,
    JSON.stringify({
      host: "127.0.0.1",
      port: 0,
      ws: false,
      data: dataDir,
      sys: false,
      metrics: { port: 0 },
      log: { level: "info" },
      plugins: [],
      ...opts.config,
      cluster: { redis: url, ...(id ? { id } : {}), ...opts.cluster },
    }),
  );
  const child = spawn(process.execPath, [CLI, "--config", file, ...(opts.args ?? [])], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  await new Promise<void>((resolve, reject) => {
    // Waits for the node's own "ready" line or its exit. The timer only guards
    // against a hang: loading plugins (fuel instrumentation runs binaryen in a
    // child process) takes tens of seconds on a loaded shared machine. A node
    // given up on is killed, or its pipes would keep the suite alive forever.
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`node ${id} did not start within ${START_SAFETY_MS / 1000} s:\n${out}`));
    }, START_SAFETY_MS);
    const check = () => {
      if (/"msg":"wasmq ready"/.test(out)) {
        clearTimeout(timer);
        child.stdout!.off("data", check);
        resolve();
      }
    };
    child.stdout!.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${id} exited with ${code}:\n${out}`));
    });
  });
  const port = Number(/mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
  const admin = /(http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(out)![1]!;
  const nodeId = /"node":"([^"]+)"/.exec(out)![1]!;
  const node: Node = {
    id: nodeId,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    admin,
    dataDir,
    child,
    log: () => out,
    async kill9() {
      running.delete(node);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await once(child, "exit");
    },
    async stop() {
      running.delete(node);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        // The CLI force-exits 10 s after SIGTERM; a node still alive at 20 s is a
        // failure to report, not a reason to hang the suite.
        const exited = once(child, "exit");
        const late = setTimeout(() => child.kill("SIGKILL"), 20_000);
        const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
        clearTimeout(late);
        if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
        assert.notEqual(signal, "SIGKILL", `node ${id} did not exit within 20 s of SIGTERM (exit code ${code}); its log:\n${out.slice(-4000)}`);
        return;
      }
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    async api(path, init) {
      const res = await fetch(`${admin}${path}`, init);
      const text = await res.text();
      return { status: res.status, body: (text.startsWith("{") ? JSON.parse(text) : text) as never };
    },
  };
  running.add(node);
  return node;
}

/** Kill every node a test file left running (an after() hook's safety net). */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...running].map((n) => n.stop()));
}

/**
 * Run the CLI to completion (e.g. `wasmq admin ...`, or a start-up that must
 * fail). The timeout only stops a hang (code null): `admin deploy` waits for
 * every node to build and meter the plugin, which took over 20 s on a loaded
 * machine.
 */
export async function runCli(args: string[], timeoutMs = START_SAFETY_MS): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
