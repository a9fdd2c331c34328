// Shared by the broker-core suites: TLS material, external processes (the
// wasmq CLI, mosquitto clients) that never outlive their suite, and small
// waits on broker events.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from "mqtt";
import { CLI, type TestBroker } from "./helpers.js";

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  /** PEM bytes of the certificate, to pass as the client's `ca`. */
  cert: Buffer;
}

/** A throw-away self-signed certificate for "localhost" / 127.0.0.1, made with openssl in `dir`. */
export function makeSelfSignedCert(dir: string): SelfSignedCert {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const result = spawnSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
      "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", keyFile, "-out", certFile,
    ],
    { encoding: "utf8" },
  );
  if (result.error) throw new Error(`cannot run openssl: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`openssl failed (${result.status}): ${result.stderr}`);
  return { certFile, keyFile, cert: readFileSync(certFile) };
}

/** Whether an executable is on PATH (it runs, whatever its exit code). */
export function hasCommand(name: string): boolean {
  const result = spawnSync(name, ["--help"], { stdio: "ignore" });
  return !result.error;
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const spawned = new Set<ChildProcess>();

/** SIGKILL every process these helpers started that is still running; for `after` hooks. */
export async function killSpawned(): Promise<void> {
  await Promise.all(
    [...spawned].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await once(child, "exit");
      }
      spawned.delete(child);
    }),
  );
}

function track(child: ChildProcess): ChildProcess {
  spawned.add(child);
  child.once("exit", () => spawned.delete(child));
  return child;
}

export interface RunningProcess {
  child: ChildProcess;
  finished: Promise<Finished>;
}

/** Run a process to completion, capturing its output; killed after `timeoutMs` (a safety net, not an assertion). */
export function runProcess(command: string, args: string[], timeoutMs = 60_000): RunningProcess {
  const child = track(spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const finished = new Promise<Finished>((resolve, reject) => {
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, finished };
}

/** Run the wasmq CLI to completion (for start-up failures and --help). */
export function runCli(args: string[]): Promise<Finished> {
  return runProcess(process.execPath, [CLI, ...args]).finished;
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ListenerPorts {
  tcp: number;
  ws?: number;
  tls?: number;
}

/** A broker started with the real CLI, whose JSON log lines are parsed as they come. */
export class CliBroker {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly lineWaiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  /** `env`: added to this process's environment for the broker child; `launcher`: what runs dist/broker/cli.js (default: this Node, no flags). */
  constructor(args: string[], env?: NodeJS.ProcessEnv, launcher: readonly string[] = [process.execPath]) {
    this.child = track(spawn(launcher[0]!, [...launcher.slice(1), CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env: env ? { ...process.env, ...env } : process.env }));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    let partial = "";
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      this.stdout += d;
      partial += d;
      const complete = partial.split("\n");
      partial = complete.pop()!;
      for (const text of complete) this.addLine(text);
    });
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => (this.stderr += d));
  }

  private addLine(text: string): void {
    if (!text.trim()) return;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { level: 0, msg: text };
    }
    this.lines.push(line);
    for (const w of [...this.lineWaiters]) {
      if (w.match(line)) {
        this.lineWaiters.splice(this.lineWaiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }

  /** Wait for a log line; rejects if the process exits first or after a generous safety timeout. */
  waitForLine(match: (l: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line after ${timeoutMs} ms:\n${this.stdout}\n${this.stderr}`)), timeoutMs);
      const waiter = {
        match,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.lineWaiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`broker exited (code ${code}, signal ${signal}) before the line appeared:\n${this.stdout}\n${this.stderr}`));
      });
    });
  }

  /** Resolve when the broker logged "wasmq ready", with the ports its listener lines name. */
  async ready(): Promise<ListenerPorts> {
    await this.waitForLine((l) => l.msg === "wasmq ready");
    const ports = listenerPorts(this.lines);
    if (ports.tcp === undefined) throw new Error(`no TCP listener line in:\n${this.stdout}`);
    return ports as ListenerPorts;
  }

  /** Send a signal and wait for the exit. */
  async stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

const LISTENING = /^MQTT over (TCP|TLS|WebSocket) listening on (mqtts?|ws):\/\/(.+):(\d+)(\/\S*)?$/;

/** The "MQTT over X listening on URL" lines, one per listener. */
/** Start the CLI on `config` and wait for it: the process and its TCP listener's URL. */
export async function startBroker(config: string): Promise<{ broker: CliBroker; url: string }> {
  const broker = new CliBroker(["--config", config]);
  const { tcp } = await broker.ready();
  return { broker, url: `mqtt://127.0.0.1:${tcp}` };
}

export function listenerLines(lines: LogLine[]): { kind: "tcp" | "tls" | "ws"; host: string; port: number; path?: string }[] {
  const kinds = { TCP: "tcp", TLS: "tls", WebSocket: "ws" } as const;
  return lines.flatMap((l) => {
    const m = LISTENING.exec(l.msg);
    if (!m) return [];
    return [{ kind: kinds[m[1] as keyof typeof kinds], host: m[3]!, port: Number(m[4]), ...(m[5] ? { path: m[5] } : {}) }];
  });
}

function listenerPorts(lines: LogLine[]): Partial<ListenerPorts> {
  const ports: Partial<ListenerPorts> = {};
  for (const l of listenerLines(lines)) ports[l.kind] = l.port;
  return ports;
}

/** Write a JSON config file and return its path. */
export function writeConfig(dir: string, name: string, config: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof config === "string" ? config : JSON.stringify(config, null, 2));
  return file;
}

/**
 * The crash suites' config file: a CLI broker on loopback (TCP only) with an
 * LMDB directory at `data`, sync durability, no plugins and no $SYS; `extra`
 * adds or overrides keys. Returns the file's path (`dir/name.json`).
 */
export function durableConfig(dir: string, name: string, data: string, extra: Record<string, unknown> = {}): string {
  return writeConfig(dir, `${name}.json`, { host: "127.0.0.1", port: 0, ws: false, data, persistence: "lmdb", durability: "sync", plugins: [], sys: false, ...extra });
}

/**
 * Connect and keep the CONNACK (for Session Present). `beforeConnect` sees the
 * client before CONNACK, so listeners it adds catch a session's queued messages.
 */
export async function connectWithConnack(
  url: string,
  opts: IClientOptions = {},
  beforeConnect: (client: MqttClient) => void = () => {},
): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  beforeConnect(client);
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once("connect", (packet) => resolve(packet));
    client.once("error", (err) => reject(err));
    client.once("close", () => reject(new Error("connection closed before CONNACK")));
  });
  client.removeAllListeners("error");
  client.on("error", () => {});
  return { client, connack };
}

/** Resolves when the client's connection has closed (now or later). */
export function closed(client: MqttClient): Promise<void> {
  if (!client.connected) return Promise.resolve();
  return new Promise((resolve) => client.once("close", () => resolve()));
}

/** Resolves when the in-process broker has registered a subscription to `filter` (from any client). */
export function subscribedOn(broker: TestBroker, filter: string): Promise<string> {
  return new Promise((resolve) => {
    const onSubscribe = (subs: { topic: string }[], client: { id: string }) => {
      if (subs.some((s) => s.topic === filter)) {
        broker.aedes.off("subscribe", onSubscribe);
        resolve(client.id);
      }
    };
    broker.aedes.on("subscribe", onSubscribe);
  });
}

/** Resolves when the in-process broker has finished with a client (after its will, if any, was published). */
export function disconnectedOn(broker: TestBroker, clientId: string): Promise<void> {
  return new Promise((resolve) => {
    const onDisconnect = (client: { id: string }) => {
      if (client.id === clientId) {
        broker.aedes.off("clientDisconnect", onDisconnect);
        resolve();
      }
    };
    broker.aedes.on("clientDisconnect", onDisconnect);
  });
}

/** A client id unique to this run, so persistent sessions of parallel suites never meet. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}
