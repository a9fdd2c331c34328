/**
 * Cluster routes of the admin API (only in cluster mode):
 *
 *   GET  /cluster                     nodes (clients, plugin digests, Redis link), deployed digests
 *   GET  /cluster/clients/:id         which node holds a client id (its owner record)
 *   GET  /cluster/nodes/:id/clients   the client ids a node holds (?limit=, default 10,000)
 *   POST /plugins/:name/deploy        a build as the body: applied here, then on every node (cluster/rollout.ts)
 *   POST /plugins/:name/rollback      every node back to the previously deployed build
 *
 * A refused build answers 422 with the reason; the old build keeps serving everywhere.
 */
import { HttpError, only, send, type AdminRequest } from "./admin.js";
import { MAX_UPLOAD_BYTES, readBody } from "./admin-upload.js";
import { RolloutError } from "../cluster/rollout.js";
import { RedisReadTimeout, within } from "../cluster/bounded-read.js";

export async function clusterRoute(r: AdminRequest): Promise<boolean> {
  const [root, name, action] = r.segs;
  const cluster = r.deps.cluster;
  const isCluster = root === "cluster" || (root === "plugins" && r.segs.length === 3 && (action === "deploy" || action === "rollback"));
  if (!isCluster) return false;
  if (!cluster) throw new HttpError(409, "this broker is not in cluster mode (no \"cluster\" config key or --redis)");
  if (root === "cluster" && r.segs.length === 1) {
    only(r.method, ["GET"]);
    send(r.res, 200, await cluster.view());
    return true;
  }
  if (root === "cluster" && name === "nodes" && r.segs.length === 4 && r.segs[3] === "clients") {
    only(r.method, ["GET"]);
    const limit = Math.max(1, Math.min(100_000, Number(r.url.searchParams.get("limit") ?? 10_000) || 10_000));
    const held = await unavailableOnTimeout(cluster.clientsOf(r.segs[2]!, limit));
    if (!held) throw new HttpError(404, `no node "${r.segs[2]}" in the cluster`);
    send(r.res, 200, held);
    return true;
  }
  if (root === "cluster" && name === "clients" && r.segs.length === 3) {
    only(r.method, ["GET"]);
    const owner = await unavailableOnTimeout(within(cluster.ownership.ownerOf(r.segs[2]!), "the owner record"));
    send(r.res, 200, { client: r.segs[2], connected: owner.node !== null, node: owner.node, generation: owner.gen });
    return true;
  }
  if (root !== "plugins") return false;
  only(r.method, ["POST"]);
  try {
    if (action === "deploy") {
      const type = (r.req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/wasm" && type !== "application/octet-stream") throw new HttpError(415, "send the build as Content-Type: application/wasm");
      const bytes = await readBody(r.req, MAX_UPLOAD_BYTES);
      const outcome = await cluster.rollout.deploy(name!, bytes);
      r.deps.chainChanged();
      send(r.res, 200, { ...outcome, size: bytes.length, deployed: true });
    } else {
      const outcome = await cluster.rollout.rollback(name!);
      r.deps.chainChanged();
      send(r.res, 200, { ...outcome, rolledBack: true });
    }
  } catch (err) {
    if (err instanceof RolloutError) {
      r.deps.logger.warn({ plugin: name, err: err.message }, `admin: ${action} of plugin ${name} refused`);
      throw new HttpError(err.status, err.message);
    }
    throw err;
  }
  return true;
}

/** Redis not answering in time (a link that has not yet noticed an outage) is a 503, not a hung request. */
async function unavailableOnTimeout<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof RedisReadTimeout) throw new HttpError(503, err.message);
    throw err;
  }
}
