/**
 * Fuel instrumentation (fuel.ts) in a child process.
 *
 * binaryen.js keeps its heap once loaded and never returns it: a broker with
 * four metered plugins measured 232 MB RSS against 83 MB for the same plugins
 * unmetered (2026-11-27, this repo's build machine). In a worker thread the
 * heap is freed when the thread ends but the process keeps most of the pages
 * (188 MB measured), so the work runs in a child process, started on demand,
 * which exits once it has been idle for IDLE_MS. An instrumentation takes
 * 100–300 ms; off the main thread it no longer stalls every client during a
 * hot reload. The next load or reload after the child exited starts a fresh
 * one (Node plus binaryen's start-up, ~0.5–1 s, in the other process).
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FuelInstrumentResult } from "./fuel.js";
import type { InstrumentReply, InstrumentRequest } from "./fuel-child.js";

const IDLE_MS = 10_000;
const WORKER = fileURLToPath(new URL("./fuel-child.js", import.meta.url));

interface Pending {
  resolve: (result: FuelInstrumentResult) => void;
  reject: (err: Error) => void;
}

let child: ChildProcess | null = null;
let idleTimer: NodeJS.Timeout | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

function start(): ChildProcess {
  // No inherited --inspect, --expose-gc, ...: the child only runs binaryen.
  const c = fork(WORKER, [], { serialization: "advanced", execArgv: [], stdio: ["ignore", "ignore", "inherit", "ipc"] });
  c.on("message", (reply: InstrumentReply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.ok) {
      const { binary, functionsInstrumented, loopsInstrumented } = reply;
      p.resolve({ binary, functionsInstrumented, loopsInstrumented });
    } else {
      p.reject(new Error(reply.message));
    }
    if (pending.size === 0) idle(c);
  });
  c.on("error", (err) => {
    if (child === c) child = null;
    failAll(new Error(`the fuel instrumentation process failed: ${err.message}`));
  });
  c.on("exit", (code, signal) => {
    if (child === c) child = null;
    if (pending.size > 0) failAll(new Error(`the fuel instrumentation process exited (${signal ?? `code ${code}`})`));
  });
  return c;
}

function setRef(c: ChildProcess, ref: boolean): void {
  const channel = c.channel as { ref(): void; unref(): void } | null | undefined;
  if (ref) {
    c.ref();
    channel?.ref();
  } else {
    c.unref();
    channel?.unref();
  }
}

/** Nothing pending: the broker may exit without waiting for the child, which stops after a while. */
function idle(c: ChildProcess): void {
  setRef(c, false);
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = null;
    if (child === c && pending.size === 0) {
      child = null;
      c.disconnect();
    }
  }, IDLE_MS);
  idleTimer.unref();
}

/** instrumentFuel(wasm), computed in the child process. Rejects with fuel.ts' error message when the module cannot be metered. */
export function instrumentFuelInChild(wasm: Uint8Array): Promise<FuelInstrumentResult> {
  if (idleTimer) {
    clearTimeout(idleTimer);
    idleTimer = null;
  }
  const c = (child ??= start());
  setRef(c, true);
  const id = nextId++;
  const request: InstrumentRequest = { id, wasm };
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    c.send(request, (err) => {
      if (err && pending.delete(id)) reject(new Error(`cannot reach the fuel instrumentation process: ${err.message}`));
    });
  });
}

/** Stop the child now (tests, shutdown); resolves to its pid once it has exited, or null if none ran. */
export async function shutDownFuelChild(): Promise<number | null> {
  const c = child;
  if (!c || c.pid === undefined) return null;
  child = null;
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = null;
  const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
  if (c.exitCode === null && c.signalCode === null) {
    c.ref(); // the idle child was unref'd: keep the caller alive until it is gone
    if (c.connected) c.disconnect();
    await exited;
  }
  return c.pid;
}
