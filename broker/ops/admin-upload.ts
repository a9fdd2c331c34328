/**
 * POST /plugins/:name/upload — a new Wasm build for a running plugin, as the
 * request body (`Content-Type: application/wasm`). The build takes the same
 * path as a hot reload from disk: compiled, metered, its init run with the
 * plugin's config, and swapped in only if all of that succeeds; a refused build
 * leaves the running one serving and answers 422 with the reason.
 *
 *   ?dryRun=true   check the build (digest, hooks, init) without applying it
 *   ?save=false    apply it without writing it over the plugin's file (by
 *                  default the file is replaced too, so a restart runs the
 *                  uploaded build; the file watcher then sees the running
 *                  digest and does not reload again)
 *
 * Answers {plugin, sha256, size, hooks, applied, saved} or {error, plugin, sha256}.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { PluginError } from "../../host/index.js";
import { HttpError, only, send, type AdminRequest } from "./admin.js";

/** Larger than any plugin we build by three orders of magnitude; bounds what one request can make us buffer. */
export const MAX_UPLOAD_BYTES = 32 * 1024 * 1024;
const WASM_TYPES = new Set(["application/wasm", "application/octet-stream"]);

export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > max) throw new HttpError(413, `a build may be at most ${max} bytes, this one is ${declared}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, `a build may be at most ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const flag = (v: string | null, fallback: boolean): boolean => (v === null ? fallback : v === "true" || v === "1");

export async function pluginUploadRoute(r: AdminRequest): Promise<boolean> {
  const [root, name, action] = r.segs;
  if (root !== "plugins" || action !== "upload" || r.segs.length !== 3) return false;
  only(r.method, ["POST"]);
  const { chain, logger } = r.deps;
  const slot = chain.slot(name!);
  if (!slot) throw new HttpError(404, `no plugin named "${name}"`);
  if (slot.kind !== "wasm") throw new HttpError(409, `plugin "${slot.name}" is native: it is loaded from its module, not from an upload`);
  const type = (r.req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (!WASM_TYPES.has(type)) throw new HttpError(415, "send the build as Content-Type: application/wasm");
  const bytes = await readBody(r.req, MAX_UPLOAD_BYTES);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const dryRun = flag(r.url.searchParams.get("dryRun"), false);
  const save = flag(r.url.searchParams.get("save"), true);
  const refused = (error: string) => {
    logger.warn({ plugin: slot.name, sha256, err: error }, `admin: upload for plugin ${slot.name} refused`);
    send(r.res, 422, { error, plugin: slot.name, sha256 });
    return true;
  };

  let check;
  try {
    check = await chain.check(slot, bytes);
  } catch (err) {
    if (err instanceof PluginError) return refused(err.message);
    throw err;
  }
  if (dryRun) {
    send(r.res, 200, { plugin: slot.name, ...check, applied: false, saved: false });
    return true;
  }
  const [result] = await chain.reload(slot.name, { bytes, save });
  r.deps.chainChanged();
  if (!result!.ok) return refused(result!.error ?? "refused");
  const saved = save && slot.lastError === null;
  logger.info({ plugin: slot.name, sha256, saved }, `admin: plugin ${slot.name} now runs an uploaded build`);
  send(r.res, 200, { plugin: slot.name, ...check, applied: true, saved, warning: slot.lastError ?? undefined });
  return true;
}
