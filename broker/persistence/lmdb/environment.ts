/**
 * Opening the LMDB environment: the data directory checked, data.mdb
 * validated before LMDB trusts it, the sub-databases opened and the data
 * format version checked. Every failure is a PersistenceOpenError naming the
 * directory and the reason.
 */
import fs from "node:fs";
import path from "node:path";
import { open, type Database, type RootDatabase, type RootDatabaseOptionsWithPath } from "lmdb";
import type { StoredPacket } from "./aedes-parts.js";
import { FORMAT_VERSION, READABLE_FORMATS, type OutRecord, type RetainedRecord, type SubEntry } from "./keys.js";

export interface LmdbPersistenceOptions {
  /** Data directory (created if missing). */
  path: string;
  /** See persistence.ts. Default "sync". */
  durability?: "sync" | "async";
  /** Initial LMDB map size in bytes (lmdb-js grows the map as needed). */
  mapSize?: number;
  /**
   * How long a QoS 1 delivery to a connected persistent session is held in
   * memory before it is written, for its subscriber's PUBACK to make the write
   * unneeded (held-puts.ts); 0 writes every delivery before it is routed.
   * Integer ms, 0..MAX_WRITE_HOLD_MS. Default DEFAULT_WRITE_HOLD_MS.
   */
  writeHoldMs?: number;
  /**
   * "adaptive" (default): hold a session's deliveries only while its recent
   * acks usually beat `writeHoldMs`, and only about as long as they take
   * (ack-pace.ts); "fixed": hold every such delivery for `writeHoldMs`.
   */
  writeHold?: "adaptive" | "fixed";
  /** Period of the expiry sweep in ms; 0 disables it. Default 60 000. */
  sweepIntervalMs?: number;
  /** Extra lmdb root options (advanced; overriding the durability options voids the guarantees above). */
  lmdb?: Partial<RootDatabaseOptionsWithPath>;
}

/**
 * Thrown at open: the message names the data directory and the reason.
 * `name` is "PersistenceError", which broker/cli.ts reports as a clean
 * start-up failure (exit 2) instead of a stack trace.
 */
export class PersistenceOpenError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot open LMDB data directory "${path}": ${reason}`, options);
    this.name = "PersistenceError";
  }
}

const LMDB_MAGIC = 0xbeefc0de;
const P_META = 0x08;
/** An empty tree's root (all ones), as readU64le returns it. */
const P_INVALID = 0xffffffff * 0x100000000 + 0xffffffff;
/** Unwritten trailing pages an intact file may have after a crash (see validateDataFile). */
const LOOSE_PAGE_ALLOWANCE = 16;

/**
 * Cheap structural check of data.mdb before handing it to LMDB, which trusts
 * the file blindly (garbage or a truncated file makes the native code
 * segfault / SIGBUS instead of returning an error). Checks both meta pages:
 * magic, meta flag, page size, and that the last used page lies inside the
 * file. Corruption deeper inside the B-trees is only caught when read.
 */
function validateDataFile(dir: string, file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new PersistenceOpenError(dir, `cannot stat ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile()) throw new PersistenceOpenError(dir, `${file} is not a regular file`);
  if (st.size === 0) return; // LMDB initialises an empty file
  const corrupt = (why: string) =>
    new PersistenceOpenError(dir, `${file} is not an LMDB data file or is corrupt (${why})`);
  if (st.size < 0xa0) throw corrupt(`file is only ${st.size} bytes`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    const head = Buffer.alloc(0xa0);
    fs.readSync(fd, head, 0, head.length, 0);
    const metaOk = (page: Buffer) =>
      page.readUInt32LE(0x18) === LMDB_MAGIC && (page.readUInt16LE(0x12) & P_META) !== 0;
    if (!metaOk(head)) throw corrupt("bad magic in meta page 0");
    const psize = head.readUInt32LE(0x30);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) throw corrupt(`implausible page size ${psize}`);
    if (st.size < 2 * psize) throw corrupt(`file (${st.size} bytes) shorter than two meta pages`);
    const head1 = Buffer.alloc(0xa0);
    fs.readSync(fd, head1, 0, head1.length, psize);
    const metas = [head, head1]
      .filter(metaOk)
      .map((m) => ({ freeRoot: readU64le(m, 0x58), mainRoot: readU64le(m, 0x88), lastPg: readU64le(m, 0x90), txnid: readU64le(m, 0x98) }))
      .sort((a, b) => b.txnid - a.txnid);
    const newest = metas[0];
    if (!newest) throw corrupt("no valid meta page");
    // The meta's last page may lie a few pages past the end of an intact file:
    // pages allocated and freed in the same transaction ("loose" pages) count
    // towards it but are never written, and kill -9 right after such a commit
    // leaves the file that short. They sit on the free list and are written
    // before reuse, so only a larger gap, or a tree root past the end, means a
    // truncated file.
    const pagesInFile = Math.floor(st.size / psize);
    for (const [what, root] of [["main tree root", newest.mainRoot], ["free list root", newest.freeRoot]] as const) {
      if (root !== P_INVALID && root >= pagesInFile) throw corrupt(`truncated: the ${what} is page ${root}, file has ${pagesInFile} pages`);
    }
    if (newest.lastPg + 1 - pagesInFile > LOOSE_PAGE_ALLOWANCE) {
      throw corrupt(`truncated: meta says ${(newest.lastPg + 1) * psize} bytes, file has ${st.size}`);
    }
  } catch (err) {
    if (err instanceof PersistenceOpenError) throw err;
    throw new PersistenceOpenError(dir, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
function readU64le(b: Buffer, offset: number): number {
  return b.readUInt32LE(offset + 4) * 0x100000000 + b.readUInt32LE(offset);
}

function prepareDirectory(dir: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new PersistenceOpenError(dir, (err as Error).message, { cause: err });
  }
  if (st && !st.isDirectory()) throw new PersistenceOpenError(dir, "path exists and is not a directory");
  if (!st) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new PersistenceOpenError(dir, `cannot create directory: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new PersistenceOpenError(dir, `directory is not writable: ${(err as Error).message}`, { cause: err });
  }
}

export interface LmdbDatabases {
  root: RootDatabase;
  meta: Database<unknown, string>;
  retained: Database<RetainedRecord, Buffer>;
  retainedTtl: Database<number, Buffer>;
  subs: Database<SubEntry, Buffer>;
  outgoing: Database<OutRecord, Buffer>;
  outgoingTtl: Database<number, Buffer>;
  incoming: Database<StoredPacket, Buffer>;
  wills: Database<StoredPacket, Buffer>;
}

export function openEnvironment(opts: LmdbPersistenceOptions): LmdbDatabases {
  if (!opts || typeof opts.path !== "string" || opts.path.length === 0) {
    throw new TypeError("createLmdbPersistence: opts.path (data directory) is required");
  }
  const dir = path.resolve(opts.path);
  prepareDirectory(dir);
  validateDataFile(dir, path.join(dir, "data.mdb"));
  let root: RootDatabase;
  try {
    root = open({
      path: dir,
      noSubdir: false,
      maxDbs: 16,
      overlappingSync: true,
      noSync: false,
      noMetaSync: false,
      useWritemap: false,
      commitDelay: 0,
      eventTurnBatching: true,
      ...(opts.mapSize ? { mapSize: opts.mapSize } : {}),
      ...opts.lmdb,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    let reason = e.message;
    if (/MDB_INVALID/.test(reason)) reason = `not an LMDB data file or corrupt (${reason})`;
    else if (/MDB_VERSION_MISMATCH/.test(reason)) reason = `written by an incompatible LMDB version (${reason})`;
    else if (e.code === "EACCES" || e.code === "EPERM" || e.code === "EROFS") reason = `permission denied (${reason})`;
    throw new PersistenceOpenError(dir, reason, { cause: err });
  }
  try {
    const bin = { keyEncoding: "binary" as const };
    const dbs: LmdbDatabases = {
      root,
      meta: root.openDB<unknown, string>({ name: "meta" }),
      retained: root.openDB<RetainedRecord, Buffer>({ name: "retained", ...bin }),
      retainedTtl: root.openDB<number, Buffer>({ name: "retained-ttl", ...bin }),
      subs: root.openDB<SubEntry, Buffer>({ name: "subs", ...bin }),
      outgoing: root.openDB<OutRecord, Buffer>({ name: "outgoing", ...bin }),
      outgoingTtl: root.openDB<number, Buffer>({ name: "outgoing-ttl", ...bin }),
      incoming: root.openDB<StoredPacket, Buffer>({ name: "incoming", ...bin }),
      wills: root.openDB<StoredPacket, Buffer>({ name: "wills", ...bin }),
    };
    const format = dbs.meta.get("format");
    if (format === undefined || (typeof format === "number" && READABLE_FORMATS.includes(format))) dbs.meta.putSync("format", FORMAT_VERSION);
    else if (format !== FORMAT_VERSION) {
      throw new Error(`data format version ${String(format)} is not supported (expected ${FORMAT_VERSION})`);
    }
    return dbs;
  } catch (err) {
    void root.close().catch(() => {});
    throw new PersistenceOpenError(dir, `failed to read the database: ${(err as Error).message}`, { cause: err });
  }
}


/** What every concern's store shares: the databases, the durability rule and the open/closed state. */
export interface StoreContext {
  readonly dbs: LmdbDatabases;
  readonly durability: "sync" | "async";
  readonly destroyed: boolean;
  readonly brokerId: string | undefined;
  /** Throws once the persistence is destroyed (see LmdbAsyncPersistence). */
  live(): void;
  /** Wait for `writes` to commit (and, with durability "sync", their batch to be flushed): see group-commit.ts. Call it in the same synchronous run as the writes. */
  settle(writes: Array<Promise<unknown>>): Promise<void>;
  /** While a settled batch is still being committed/flushed, a promise for its end (see GroupCommit.busy). */
  busy(): Promise<void> | undefined;
}

export const noop = () => {};
