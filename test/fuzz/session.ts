// One fuzz session: a broker in a child process, a well-behaved probe client
// publishing QoS 1 to itself throughout, a warm-up and a heap baseline, the
// fuzz run, then the heap again once every fuzz connection is gone.
// Used by test/fuzz.test.ts (reduced count) and test/fuzz/run.ts (full count).
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { FUZZ_LIMITS, type HeapReport } from "./shared.js";
import { fuzz, type FuzzResult } from "./engine.js";

export interface SessionOptions {
  packets: number;
  seed: number;
  concurrency?: number;
  onProgress?: (written: number) => void;
}

export interface SessionResult {
  fuzz: FuzzResult;
  baseline: HeapReport;
  after: HeapReport;
  probe: { sent: number; acked: number; received: number; missing: number; stayedConnected: boolean };
  /** Exit code if the broker process died during the run, else null. */
  brokerExit: number | null;
  brokerStderr: string;
  durationMs: number;
}

const CHILD = fileURLToPath(new URL("./broker-child.js", import.meta.url));

function request(child: ChildProcess, type: string): Promise<HeapReport> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { type: string }) => {
      if (msg.type !== type) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve(msg as HeapReport);
    };
    const onExit = (code: number | null) => reject(new Error(`fuzz broker exited (code ${code}) while asked for ${type}`));
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send({ type });
  });
}

/** The heap once the broker holds only the probe's connection (bounded wait). */
async function settledHeap(child: ChildProcess): Promise<HeapReport> {
  let report = await request(child, "heap");
  for (let i = 0; i < 150 && (report.sockets > 1 || report.clients > 1); i++) {
    await new Promise((r) => setTimeout(r, 100));
    report = await request(child, "heap");
  }
  return report;
}

export async function runFuzzSession(opts: SessionOptions): Promise<SessionResult> {
  const started = Date.now();
  const child = fork(CHILD, [], { execArgv: ["--expose-gc"], stdio: ["ignore", "ignore", "pipe", "ipc"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let brokerExit: number | null = null;
  child.once("exit", (code) => (brokerExit = code ?? -1));
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (msg: { type: string; port: number }) => (msg.type === "ready" ? resolve(msg.port) : reject(new Error(`unexpected ${msg.type}`))));
    child.once("exit", (code) => reject(new Error(`fuzz broker exited with ${code} before it was ready: ${stderr}`)));
  });

  const probe = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: "fuzz-probe", reconnectPeriod: 0, keepalive: 10 });
  probe.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    probe.once("connect", () => resolve());
    probe.once("close", () => reject(new Error("the probe could not connect")));
  });
  let stayedConnected = true;
  probe.on("close", () => (stayedConnected = false));
  const received = new Set<number>();
  probe.on("message", (_topic, payload) => received.add(Number(payload.toString())));
  await probe.subscribeAsync("probe/#", { qos: 1 });

  try {
    const concurrency = opts.concurrency ?? 32;
    // Warm up (JIT, caches, the store's first pages) before taking the baseline.
    await fuzz({ port, packets: 1000, concurrency, seed: opts.seed + 1, maxPacketSize: FUZZ_LIMITS.maxPacketSize });
    const baseline = await settledHeap(child);

    let sent = 0;
    let acked = 0;
    let probing = true;
    const probeLoop = (async () => {
      while (probing && stayedConnected) {
        const n = sent++;
        probe.publishAsync(`probe/${n}`, String(n), { qos: 1 }).then(
          () => acked++,
          () => {},
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await fuzz({
      port,
      packets: opts.packets,
      concurrency,
      seed: opts.seed,
      maxPacketSize: FUZZ_LIMITS.maxPacketSize,
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    probing = false;
    await probeLoop;
    for (let i = 0; i < 300 && stayedConnected && (received.size < sent || acked < sent); i++) await new Promise((r) => setTimeout(r, 100));
    const after = await settledHeap(child);
    return {
      fuzz: result,
      baseline,
      after,
      probe: { sent, acked, received: received.size, missing: sent - received.size, stayedConnected },
      brokerExit,
      brokerStderr: stderr,
      durationMs: Date.now() - started,
    };
  } finally {
    await probe.endAsync(true).catch(() => {});
    if (brokerExit === null) {
      child.send({ type: "stop" });
      await new Promise((r) => {
        const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
        child.once("exit", () => {
          clearTimeout(t);
          r(null);
        });
      });
    }
  }
}
