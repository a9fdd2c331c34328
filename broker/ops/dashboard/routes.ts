/**
 * The dashboard's own API, under /dashboard/api/ (behind the admin token like
 * every data route). What the general admin API already answers (plugins,
 * clients, kick, reload, enable/disable, upload) the page calls directly.
 *
 *   GET    live                       the event stream (live.ts)
 *   GET    info                       what the page needs to know about this broker
 *   GET    plugin-timing              call-time percentiles by plugin and hook
 *   GET    retained?filter=F&limit=N  retained messages matching a topic filter (payload as base64)
 *   DELETE retained?topic=T           delete one retained message (nothing is delivered)
 *   GET    subscriptions?filter=S     connected clients' subscriptions whose filter contains S
 *   GET    plugins/:name/build        the plugin's .wasm file and its config, for the playground
 *   POST   meter                      a .wasm as the body → the same build with fuel metering added
 */
import type { Client } from "aedes";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { instrumentFuelInChild } from "../../../host/fuel-offload.js";
import { HttpError, only, send, type AdminRequest } from "../admin.js";
import { MAX_UPLOAD_BYTES } from "../admin-upload.js";
import { serveLive } from "./live.js";
import { pluginTimings } from "./timing.js";
import type { Dashboard } from "./index.js";

const MAX_RETAINED_LISTED = 1000;

export interface PluginSetup {
  config: Record<string, unknown>;
  fuel: number | null;
  onError: string;
}

interface RetainedPacket {
  topic: string;
  payload: Buffer | Uint8Array | string;
  qos: number;
}

async function readBody(r: AdminRequest, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of r.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, `at most ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A topic filter as a client may subscribe with it ([MQTT-4.7.1-2], [MQTT-4.7.1-3]). */
function validFilter(f: string): boolean {
  if (f.length === 0 || f.includes("\u0000")) return false;
  const levels = f.split("/");
  return levels.every((l, i) => (l.includes("#") ? l === "#" && i === levels.length - 1 : !l.includes("+") || l === "+"));
}

async function listRetained(d: Dashboard, filter: string, limit: number): Promise<{ messages: unknown[]; truncated: boolean }> {
  const p = d.sources.persistence.persistence as { createRetainedStreamCombi(patterns: string[]): AsyncIterable<RetainedPacket> };
  const seen = new Map<string, unknown>();
  let truncated = false;
  for await (const packet of p.createRetainedStreamCombi([filter])) {
    if (seen.has(packet.topic)) continue;
    if (seen.size >= limit) {
      truncated = true;
      break;
    }
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : Buffer.from(packet.payload);
    seen.set(packet.topic, { topic: packet.topic, qos: packet.qos, size: payload.length, payload: payload.toString("base64") });
  }
  return { messages: [...seen.values()], truncated };
}

function deleteRetained(d: Dashboard, topic: string): Promise<void> {
  const p = d.sources.persistence.persistence as { storeRetained(packet: object, cb: (err?: Error | null) => void): Promise<void> | void };
  // An empty retained payload is how MQTT deletes one ([MQTT-3.3.1-10]); stored directly, it reaches no subscriber.
  const packet = { cmd: "publish", topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false, messageId: 0 };
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    const ret = p.storeRetained(packet, done);
    if (ret && typeof (ret as Promise<void>).then === "function") (ret as Promise<void>).then(() => resolve(), reject);
  });
}

function subscriptions(d: Dashboard, search: string): unknown[] {
  const clients = (d.sources.aedes as unknown as { clients: Record<string, Client & { subscriptions: Record<string, { qos: number }> }> }).clients;
  const out: unknown[] = [];
  for (const id in clients) {
    for (const [topic, s] of Object.entries(clients[id]!.subscriptions)) {
      if (!search || topic.includes(search)) out.push({ clientId: id, topic, qos: s.qos });
    }
  }
  return out;
}

export async function dashboardApiRoute(r: AdminRequest): Promise<boolean> {
  const [root, api, what, name, action] = r.segs;
  if (root !== "dashboard" || api !== "api") return false;
  const d = r.deps.dashboard;
  if (!d) throw new HttpError(404, "the dashboard is not running on this broker");
  const q = r.url.searchParams;
  switch (what) {
    case "live":
      only(r.method, ["GET"]);
      serveLive(r, d);
      return true;
    case "info":
      only(r.method, ["GET"]);
      send(r.res, 200, { ws: d.sources.ws, logs: d.sources.logs !== null, historySeconds: 900 });
      return true;
    case "plugin-timing":
      only(r.method, ["GET"]);
      send(r.res, 200, { plugins: await pluginTimings(d.sources.metrics.registry) });
      return true;
    case "retained": {
      only(r.method, ["GET", "DELETE"]);
      if (r.method === "DELETE") {
        const topic = q.get("topic");
        if (!topic || topic.includes("+") || topic.includes("#")) throw new HttpError(400, "topic: give one topic name (no wildcards)");
        await deleteRetained(d, topic);
        r.deps.logger.info({ topic }, `admin: retained message on ${topic} deleted`);
        send(r.res, 200, { topic, deleted: true });
        return true;
      }
      const filter = q.get("filter") || "#";
      if (!validFilter(filter)) throw new HttpError(400, `filter: "${filter}" is not a valid topic filter`);
      const limit = Math.min(MAX_RETAINED_LISTED, Math.max(1, Number(q.get("limit") ?? 200) || 200));
      send(r.res, 200, { filter, ...(await listRetained(d, filter, limit)) });
      return true;
    }
    case "subscriptions":
      only(r.method, ["GET"]);
      send(r.res, 200, { subscriptions: subscriptions(d, q.get("filter") ?? "") });
      return true;
    case "plugins": {
      only(r.method, ["GET"]);
      const slot = name === undefined ? undefined : r.deps.chain.slot(name);
      if (!slot || action !== "build" || r.segs.length !== 5) throw new HttpError(404, `no plugin named "${name ?? ""}"`);
      if (slot.kind !== "wasm") throw new HttpError(409, `plugin "${slot.name}" is native: there is no .wasm to run in the browser`);
      const bytes = await readFile(slot.source).catch((err: Error) => {
        throw new HttpError(500, `cannot read ${slot.source}: ${err.message}`);
      });
      const setup = d.sources.pluginSetups?.[slot.name] ?? { config: {}, fuel: null, onError: slot.onError };
      send(r.res, 200, {
        plugin: slot.name,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        running: slot.sha256,
        wasm: bytes.toString("base64"),
        ...setup,
      });
      return true;
    }
    case "meter": {
      only(r.method, ["POST"]);
      const bytes = await readBody(r, MAX_UPLOAD_BYTES);
      let binary: Uint8Array;
      try {
        binary = (await instrumentFuelInChild(bytes)).binary;
      } catch (err) {
        throw new HttpError(422, `cannot meter this module: ${(err as Error).message}`);
      }
      r.res.writeHead(200, { "content-type": "application/wasm", "content-length": binary.length, "cache-control": "no-store" }).end(Buffer.from(binary));
      return true;
    }
    default:
      throw new HttpError(404, `nothing at ${r.method} ${r.url.pathname}`);
  }
}
