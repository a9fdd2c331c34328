/**
 * Who this node is in the cluster.
 *
 * The node id is stable across restarts: the configured `cluster.id` (or
 * --node-id), else the id kept in `<data>/cluster-node-id`, else one derived
 * from the host name and MQTT port (a random suffix when the port is 0) and
 * written there for next time.
 *
 * The incarnation is this run of the node: `<node id>.<start time base36>`. It
 * is aedes' broker id, so it names the node's packets in Redis
 * (`packet:<broker id>:<counter>`) and wills (`will:<broker id>:<client>`):
 * aedes restarts its counter at 0, so a restarted node must not reuse the
 * keys of messages its previous run left queued.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { NODE_ID_PATTERN } from "./config.js";
import { ClusterError } from "./redis-link.js";

export interface NodeIdentity {
  id: string;
  incarnation: string;
  /** Where the id came from, for the start-up log. */
  source: "config" | "data dir" | "derived";
}

const ID_FILE = "cluster-node-id";

export function nodeIdentity(configured: string | null, dataDir: string, port: number): NodeIdentity {
  const incarnationOf = (id: string) => `${id}.${Date.now().toString(36)}`;
  if (configured) return { id: configured, incarnation: incarnationOf(configured), source: "config" };
  const file = join(dataDir, ID_FILE);
  if (existsSync(file)) {
    const id = readFileSync(file, "utf8").trim();
    if (!NODE_ID_PATTERN.test(id)) throw new ClusterError(`${file} holds "${id}", not a node id (1-64 letters, digits, '_', '.', '-'): fix or delete it`);
    return { id, incarnation: incarnationOf(id), source: "data dir" };
  }
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 40) || "node";
  const id = `${host}-${port > 0 ? port : randomBytes(3).toString("hex")}`;
  try {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${id}\n`);
  } catch (err) {
    throw new ClusterError(`cannot keep the derived node id in ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; set "cluster.id" or --node-id`);
  }
  return { id, incarnation: incarnationOf(id), source: "derived" };
}
