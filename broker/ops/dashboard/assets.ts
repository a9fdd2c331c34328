/**
 * GET / and /assets/* — the dashboard's files, built into dist/dashboard by
 * `npm run build` (build.ts). They hold no broker data, so they load without
 * the token: the page needs them to show its login form. Every other path on
 * the admin port keeps its token check.
 *
 * Headers: a Content-Security-Policy that allows only this origin's own files
 * (no inline script or style, no eval, nothing from elsewhere; `connect-src`
 * adds WebSockets for the MQTT client page, whose listener is another port),
 * no framing, no MIME sniffing, no referrer.
 */
import { readFileSync, readdirSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpError, only, type AdminRequest } from "../admin.js";

export const DASHBOARD_DIR = fileURLToPath(new URL("../../../dashboard/", import.meta.url));

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
};

interface Asset {
  body: Buffer;
  type: string;
}

let cache: Map<string, Asset> | null = null;

/** The built files, read once: a handful of small files, served from memory. */
function assets(): Map<string, Asset> {
  if (cache) return cache;
  const map = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(DASHBOARD_DIR);
  } catch {
    throw new HttpError(503, "the dashboard is not built: run `npm run build` (it writes dist/dashboard/)");
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type) map.set(name, { body: readFileSync(DASHBOARD_DIR + name), type });
  }
  cache = map;
  return map;
}

/** The paths served without the token (the admin guard's `isPublic`): the page's own files, no broker data. */
export function isDashboardAsset(pathname: string): boolean {
  return pathname === "/" || pathname === "/index.html" || /^\/assets\/[\w.-]+$/.test(pathname);
}

export async function dashboardAssetsRoute(r: AdminRequest): Promise<boolean> {
  const { segs } = r;
  let name: string | undefined;
  if (segs.length === 0 || (segs.length === 1 && segs[0] === "index.html")) name = "index.html";
  else if (segs.length === 2 && segs[0] === "assets") name = segs[1];
  else return false;
  only(r.method, ["GET", "HEAD"]);
  const asset = name === undefined ? undefined : assets().get(name);
  if (!asset) throw new HttpError(404, `no dashboard file ${r.url.pathname}`);
  r.res.writeHead(200, {
    ...SECURITY_HEADERS,
    "content-type": asset.type,
    "content-length": asset.body.length,
    // index.html names the bundle without a hash, so both are revalidated; they are small.
    "cache-control": "no-cache",
  });
  r.res.end(r.method === "HEAD" ? undefined : asset.body);
  return true;
}
