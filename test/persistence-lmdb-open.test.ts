/**
 * LMDB persistence: open errors (each named with its path and reason) and the
 * plugin key-value store on the broker's LMDB environment.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdirSync, openSync, closeSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { KvLimitError } from "../host/kv.js";
import { createLmdbPersistence, openForBroker, openLmdbPersistence, PersistenceOpenError, setQueueExpiry } from "../broker/persistence/lmdb.js";
import { createPluginStore, LmdbKvStore } from "../broker/persistence/plugin-kv.js";
import { freshDir, broker, openP, close, base, nextId } from "./lmdb-support.js";

describe("open errors", () => {
  test("a path under a regular file names the path and the reason", () => {
    const file = path.join(base, `plain-file-${nextId()}`);
    writeFileSync(file, "not a directory");
    const target = path.join(file, "data");
    assert.throws(
      () => createLmdbPersistence({ path: target }),
      (err: unknown) => {
        assert.ok(err instanceof PersistenceOpenError);
        assert.ok(err.message.includes(target), err.message);
        assert.match(err.message, /ENOTDIR|not a directory/);
        return true;
      },
    );
    assert.throws(() => createLmdbPersistence({ path: file }), /is not a directory/);
  });

  test("an unwritable directory is refused (as root too: the check then runs as user nobody)", async () => {
    const dir = freshDir();
    mkdirSync(dir);
    chmodSync(dir, 0o500);
    // Root's writes ignore file modes (and CI runs as root), so as root the store is
    // opened by a child process that has dropped to nobody (uid/gid 65534).
    const asRoot = process.getuid?.() === 0;
    try {
      let outcome: { name: string; message: string } | null;
      if (asRoot) {
        chmodSync(base, 0o755); // nobody must reach the directory to be refused writing to it
        const lmdbModule = pathToFileURL(fileURLToPath(new URL("../broker/persistence/lmdb.js", import.meta.url))).href;
        // The module is loaded as root and the process drops to nobody before opening: nobody need not
        // be able to read the checkout (a clone inside a 0700 temp directory is fine).
        const script = `import(${JSON.stringify(lmdbModule)}).then((m) => { process.setgid(65534); process.setuid(65534); try { m.createLmdbPersistence({ path: ${JSON.stringify(dir)} }); console.log("null"); } catch (err) { console.log(JSON.stringify({ name: err.constructor.name, message: err.message })); } });`;
        const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
        const [code] = (await once(child, "exit")) as [number | null];
        assert.equal(code, 0, err);
        outcome = JSON.parse(out) as { name: string; message: string } | null;
      } else {
        try {
          createLmdbPersistence({ path: dir });
          outcome = null;
        } catch (err) {
          outcome = { name: (err as Error).constructor.name, message: (err as Error).message };
        }
      }
      assert.ok(outcome, "opening an unwritable directory must fail");
      assert.equal(outcome.name, PersistenceOpenError.name);
      assert.ok(outcome.message.includes(dir), outcome.message);
      assert.match(outcome.message, /not writable|permission/i);
    } finally {
      chmodSync(dir, 0o700);
    }
  });

  test("garbage in data.mdb is reported, not a segfault", async () => {
    for (const garbage of [Buffer.from("hello world"), Buffer.alloc(65536, 7)]) {
      const dir = freshDir();
      mkdirSync(dir);
      writeFileSync(path.join(dir, "data.mdb"), garbage);
      await assert.rejects(openLmdbPersistence({ path: dir }), (err: unknown) => {
        assert.ok(err instanceof PersistenceOpenError);
        assert.ok(err.message.includes(dir), err.message);
        assert.match(err.message, /not an LMDB data file or is corrupt/);
        return true;
      });
    }
  });

  test("a truncated data file is reported (LMDB would SIGBUS)", async () => {
    const dir = freshDir();
    const p = await openP(dir);
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        p.storeRetained({ cmd: "publish", topic: `t/${i}`, payload: Buffer.alloc(500, i), qos: 0, retain: true }),
      ),
    );
    await close(p);
    const file = path.join(dir, "data.mdb");
    truncateSync(file, Math.floor(statSync(file).size / 2));
    assert.throws(() => createLmdbPersistence({ path: dir }), /truncated/);
  });

  test("trailing pages the meta counts but a crash left unwritten do not refuse an intact file", async () => {
    const dir = freshDir();
    const p = await openP(dir);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        p.storeRetained({ cmd: "publish", topic: `keep/${i}`, payload: Buffer.alloc(100, i), qos: 0, retain: true }),
      ),
    );
    await close(p);
    // What kill -9 right after a commit with loose pages leaves: the newest meta's
    // last page a few pages past the end of the file (seen in bridge-qos2 runs).
    const file = path.join(dir, "data.mdb");
    const bytes = readFileSync(file);
    const psize = bytes.readUInt32LE(0x30);
    const metaAt = [0, psize].sort((a, b) => Number(bytes.readBigUInt64LE(b + 0x98) - bytes.readBigUInt64LE(a + 0x98)))[0]!;
    const lastPg = bytes.readBigUInt64LE(metaAt + 0x90);
    const fd = openSync(file, "r+");
    const patched = Buffer.alloc(8);
    patched.writeBigUInt64LE(lastPg + 3n);
    writeSync(fd, patched, 0, 8, metaAt + 0x90);
    closeSync(fd);
    const reopened = await openP(dir);
    const retained: string[] = [];
    for await (const packet of reopened.createRetainedStreamCombi(["keep/#"])) retained.push((packet as { topic: string }).topic);
    assert.equal(retained.length, 50);
    await close(reopened);
  });

  test("a corrupted meta page is reported", async () => {
    const dir = freshDir();
    await close(await openP(dir));
    const file = path.join(dir, "data.mdb");
    const fd = openSync(file, "r+");
    const psize = readFileSync(file).readUInt32LE(0x30);
    writeSync(fd, Buffer.alloc(64, 0x55), 0, 64, 0);
    writeSync(fd, Buffer.alloc(64, 0x55), 0, 64, psize);
    closeSync(fd);
    assert.throws(() => createLmdbPersistence({ path: dir }), (err: unknown) => err instanceof PersistenceOpenError && err.message.includes(dir));
  });

  test("bad options", () => {
    assert.throws(() => createLmdbPersistence({ path: "" }), /path/);
    assert.throws(() => createLmdbPersistence({ path: freshDir(), durability: "maybe" as "sync" }), /durability/);
  });
});

describe("plugin KV store", () => {
  const limits = { maxValueBytes: 100, maxKeyBytes: 16, maxNamespaceBytes: 300 };
  const b = (s: string) => Buffer.from(s);

  test("namespaces are isolated, values round-trip as bytes", async () => {
    const p = await openP(freshDir());
    const kv = p.pluginStore(limits);
    kv.put("a", b("bx"), b("in a"));
    kv.put("ab", b("x"), b("in ab"));
    kv.put("other", b("bx"), new Uint8Array([1, 2, 3]));
    assert.equal(Buffer.from(kv.get("a", b("bx"))!).toString(), "in a");
    assert.equal(Buffer.from(kv.get("ab", b("x"))!).toString(), "in ab");
    assert.equal(kv.get("a", b("x")), undefined);
    assert.equal(kv.get("ab", b("bx")), undefined);
    assert.deepEqual([...kv.get("other", b("bx"))!], [1, 2, 3]);
    assert.equal(kv.delete("a", b("bx")), true);
    assert.equal(kv.delete("a", b("bx")), false);
    assert.deepEqual([...kv.get("other", b("bx"))!], [1, 2, 3]);
    assert.throws(() => kv.put("bad\0ns", b("k"), b("v")), KvLimitError);
    // a view into a larger buffer (as from Wasm memory) stores only the view
    const memory = new Uint8Array(64).fill(9);
    kv.put("a", memory.subarray(0, 2), memory.subarray(10, 13));
    assert.deepEqual([...kv.get("a", new Uint8Array([9, 9]))!], [9, 9, 9]);
    await close(p);
  });

  test("limits: key, value and namespace total; overwrite and delete adjust the budget", async () => {
    const p = await openP(freshDir());
    const kv = p.pluginStore(limits);
    assert.throws(() => kv.put("ns", Buffer.alloc(17, 1), b("v")), KvLimitError);
    assert.throws(() => kv.put("ns", b("k"), Buffer.alloc(101)), KvLimitError);
    assert.throws(() => kv.put("ns", new Uint8Array(0), b("v")), KvLimitError);
    kv.put("ns", b("k1"), Buffer.alloc(98)); // 100
    kv.put("ns", b("k2"), Buffer.alloc(98)); // 200
    kv.put("ns", b("k3"), Buffer.alloc(98)); // 300 = limit
    assert.throws(() => kv.put("ns", b("k4"), Buffer.alloc(1)), /would exceed 300/);
    kv.put("ns", b("k3"), Buffer.alloc(50)); // overwrite shrinks: 252
    kv.put("ns", b("k4"), Buffer.alloc(46)); // 300
    assert.throws(() => kv.put("ns", b("k5"), Buffer.alloc(0)), KvLimitError);
    kv.put("other", b("k1"), Buffer.alloc(98)); // other namespace has its own budget
    assert.equal(kv.delete("ns", b("k1")), true); // 200
    kv.put("ns", b("k5"), Buffer.alloc(98)); // 300
    assert.equal((kv as LmdbKvStore).namespaceBytes("ns"), 300);
    await close(p);
  });

  test("data and budgets survive reopen; a second store on the same root shares the budget", async () => {
    const dir = freshDir();
    let p = await openP(dir);
    let kv = p.pluginStore(limits);
    kv.put("ns", b("k1"), Buffer.alloc(98, 1));
    kv.put("ns", b("k2"), Buffer.alloc(98, 2));
    const twin = createPluginStore(p.root, limits);
    twin.put("ns", b("k3"), Buffer.alloc(90, 3)); // 292
    assert.throws(() => kv.put("ns", b("k4"), Buffer.alloc(10)), KvLimitError);
    await close(p);

    p = await openP(dir);
    kv = p.pluginStore(limits);
    assert.deepEqual(Buffer.from(kv.get("ns", b("k2"))!), Buffer.alloc(98, 2));
    assert.equal((kv as LmdbKvStore).namespaceBytes("ns"), 292, "recomputed after reopen");
    assert.throws(() => kv.put("ns", b("k4"), Buffer.alloc(10)), KvLimitError);
    kv.put("ns", b("k4"), Buffer.alloc(4)); // 300
    await close(p);
  });

  test("openForBroker returns persistence, kv and expiry helpers; close is idempotent", async () => {
    const dir = freshDir();
    const opened = await openForBroker({ path: dir, durability: "async", sweepIntervalMs: 0 });
    assert.equal(opened.mode, "lmdb");
    opened.kv.put("p", b("k"), b("v"));
    assert.equal(typeof opened.expiry.setQueueExpiry, "function");
    await opened.persistence.setup(broker);
    await opened.close();
    await opened.close();
    const again = await openForBroker({ path: dir, sweepIntervalMs: 0 });
    assert.equal(Buffer.from(again.kv.get("p", b("k"))!).toString(), "v");
    await again.close();
  });
});

