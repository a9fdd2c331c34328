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
const CHILD_SCRIPT = fileURLToPath(new URL("./fuel-child.js", import.meta.url));

interface Pending {
  resolve: (result: FuelInstrumentResult) => void;
  reject: (err: Error) => void;
}

/** A child and the requests it owes an answer: an old child's exit must not fail a newer one's. */
interface Child {
  process: ChildProcess;
  pending: Map<number, Pending>;
}

let current: Child | null = null;
let idleTimer: NodeJS.Timeout | null = null;
let nextId = 1;

function failAll(child: Child, err: Error): void {
  for (const p of child.pending.values()) p.reject(err);
  child.pending.clear();
}

function start(): Child {
  // No inherited --inspect, --expose-gc, ...: the child only runs binaryen.
  const proc = fork(CHILD_SCRIPT, [], { serialization: "advanced", execArgv: [], stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const child: Child = { process: proc, pending: new Map() };
  proc.on("message", (reply: InstrumentReply) => {
    const p = child.pending.get(reply.id);
    if (!p) return;
    child.pending.delete(reply.id);
    if (reply.ok) {
      const { binary, functionsInstrumented, functionsChargedAtCallSites, loopsInstrumented } = reply;
      p.resolve({ binary, functionsInstrumented, functionsChargedAtCallSites, loopsInstrumented });
    } else {
      p.reject(new Error(reply.message));
    }
    if (child.pending.size === 0) idle(child);
  });
  proc.on("error", (err) => {
    if (current === child) current = null;
    failAll(child, new Error(`the fuel instrumentation process failed: ${err.message}`));
  });
  proc.on("exit", (code, signal) => {
    if (current === child) current = null;
    failAll(child, new Error(`the fuel instrumentation process exited (${signal ?? `code ${code}`})`));
  });
  return child;
}

function setRef(proc: ChildProcess, ref: boolean): void {
  const channel = proc.channel as { ref(): void; unref(): void } | null | undefined;
  if (ref) {
    proc.ref();
    channel?.ref();
  } else {
    proc.unref();
    channel?.unref();
  }
}

/** Nothing pending: the broker may exit without waiting for the child, which stops after a while. */
function idle(child: Child): void {
  setRef(child.process, false);
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = null;
    if (current === child && child.pending.size === 0) {
      current = null;
      child.process.disconnect();
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
  const child = (current ??= start());
  setRef(child.process, true);
  const id = nextId++;
  const request: InstrumentRequest = { id, wasm };
  return new Promise((resolve, reject) => {
    child.pending.set(id, { resolve, reject });
    child.process.send(request, (err) => {
      if (err && child.pending.delete(id)) reject(new Error(`cannot reach the fuel instrumentation process: ${err.message}`));
    });
  });
}

/** Stop the child now (tests, shutdown); resolves to its pid once it has exited, or null if none ran. */
export async function shutDownFuelChild(): Promise<number | null> {
  const child = current;
  const proc = child?.process;
  if (!proc || proc.pid === undefined) return null;
  current = null;
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = null;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.ref(); // the idle child was unref'd: keep the caller alive until it is gone
    if (proc.connected) proc.disconnect();
    await exited;
  }
  return proc.pid;
}
