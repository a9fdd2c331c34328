// Shared by the LMDB persistence suites: a fresh data directory per test, open/close, packets.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { createLmdbPersistence, type LmdbPersistence } from "../broker/persistence/lmdb.js";

const require = createRequire(import.meta.url);
export const Packet = require("aedes-packet") as new (o: object, b?: { id: string; counter: number }) => Record<string, unknown>;

/** The folder every data directory of these suites lives in (removed at exit). */
export const base = mkdtempSync(path.join(tmpdir(), "wasmq-lmdb-"));
let n = 0;
/** A number not used before in this process, for unique names under `base`. */
export const nextId = () => ++n;
export const freshDir = () => path.join(base, `db-${nextId()}`);
process.once("exit", () => rmSync(base, { recursive: true, force: true }));

export const broker = { id: "broker-1", counter: 0 };

export async function openP(dir: string, opts: Partial<Parameters<typeof createLmdbPersistence>[0]> = {}): Promise<LmdbPersistence> {
  const p = createLmdbPersistence({ path: dir, sweepIntervalMs: 0, ...opts });
  await p.setup(broker);
  return p;
}
export async function close(p: LmdbPersistence): Promise<void> {
  await p.destroy();
}
export async function list<T = Record<string, unknown>>(stream: Readable): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item as T);
  return out;
}
export const pub = (topic: string, payload: Buffer | string, extra: object = {}) =>
  new Packet({ cmd: "publish", topic, payload, qos: 1, retain: false, ...extra }, broker);
