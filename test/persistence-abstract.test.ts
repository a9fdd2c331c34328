/**
 * The conformance suite shipped in aedes-persistence (abstract.js), run
 * unmodified against:
 *   - the LMDB persistence through aedes-persistence's callback layer
 *     (what createLmdbPersistence returns), with and without waitForReady;
 *   - the LMDB async class directly (testAsync: the promise API aedes 1.x uses);
 *   - the in-memory mode (createMemoryPersistence).
 * Every LMDB instance gets a fresh temporary directory.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { createLmdbPersistence, LmdbAsyncPersistence } from "../broker/persistence/lmdb.js";
import { createMemoryPersistence } from "../broker/persistence/memory.js";

const require = createRequire(import.meta.url);
const abstractPersistence = require("aedes-persistence/abstract.js") as (opts: {
  test: typeof test;
  persistence: () => unknown;
  waitForReady?: boolean;
  testAsync?: boolean;
}) => void;

const base = mkdtempSync(path.join(tmpdir(), "wasmq-abstract-"));
let n = 0;
const freshDir = () => path.join(base, `db-${++n}`);
after(() => rmSync(base, { recursive: true, force: true }));

describe("lmdb (callback layer)", () => {
  abstractPersistence({ test, persistence: () => createLmdbPersistence({ path: freshDir(), sweepIntervalMs: 0 }) });
});

describe("lmdb (callback layer, waitForReady, durability async)", () => {
  abstractPersistence({
    test,
    waitForReady: true,
    persistence: () => createLmdbPersistence({ path: freshDir(), durability: "async", sweepIntervalMs: 0 }),
  });
});

describe("lmdb (async class, promise API)", () => {
  abstractPersistence({ test, testAsync: true, persistence: () => new LmdbAsyncPersistence({ path: freshDir() }) });
});

describe("memory", () => {
  abstractPersistence({ test, persistence: () => createMemoryPersistence({ sweepIntervalMs: 0 }) });
});
