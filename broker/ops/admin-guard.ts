/**
 * The admin listener's request guard: every request, to every route (API,
 * metrics, dashboard pages, uploads, live streams — including routes added
 * later), passes through `check` before it is routed. It stops three attacks
 * that a loopback-only port does not stop on its own:
 *
 *  - **DNS rebinding.** A page from evil.example re-points its own name at
 *    127.0.0.1; the browser then treats this port as evil.example's own
 *    origin and lets the page read the answers — but its requests carry
 *    `Host: evil.example`. So the Host header must name this listener: its own address and port
 *    (the address the connection arrived on, or the configured bind address),
 *    `localhost:<port>`, or a name listed in `metrics.allowedHosts`. Otherwise
 *    421 Misdirected Request.
 *  - **Cross-site requests** ("CSRF"). Any web page can make the browser send a
 *    "simple" POST (form content type, no custom header) without a preflight.
 *    A state-changing request (any method but GET/HEAD/OPTIONS) must carry
 *    `X-Wasmq-Request: 1`: a custom header that a browser sends cross-origin
 *    only after a CORS preflight, and this server never grants a preflight
 *    (it sends no Access-Control-Allow-* header anywhere). On top of that, an
 *    `Origin` header must be this listener's own origin, and a browser's
 *    `Sec-Fetch-Site: cross-site` / `same-site` is refused. 403.
 *  - **Cross-origin reads.** GET/HEAD are refused the same way when the
 *    browser says the request comes from another origin (`Sec-Fetch-Site`
 *    cross-site/same-site, or a foreign `Origin`) — except a top-level
 *    navigation (`Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document`),
 *    whose answer the other site cannot read (a link to the dashboard from a
 *    wiki keeps working). `Cross-Origin-Resource-Policy: same-origin` on every
 *    answer stops browsers from handing a response to another origin's page.
 *
 * Then the token: with `metrics.token` set, every request needs
 * `Authorization: Bearer <token>` (401 otherwise), except the paths the
 * listener declares public (`isPublic`, e.g. a dashboard's static shell that
 * asks for the token itself). Both sides are hashed (HMAC-SHA256 under a key
 * drawn at start) before a constant-time comparison, so neither the token's
 * contents nor its length leak through timing.
 *
 * Clients other than browsers (curl, Prometheus, `wasmq admin`) send no
 * Origin or Sec-Fetch-* headers: for them the rules reduce to "Host must name
 * the listener" and "state-changing requests send X-Wasmq-Request: 1".
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** The header a state-changing request must carry (value "1"). */
export const REQUEST_HEADER = "x-wasmq-request";

export interface AdminGuardOptions {
  /** The listener's scheme: its own origin is `<scheme>://<Host header>`. */
  scheme: "http" | "https";
  /** The configured bind address (`metrics.host`); a wildcard (0.0.0.0, ::) names nothing. */
  bindHost: string;
  /** The port the listener is bound to. */
  port: number;
  /** `metrics.allowedHosts`: extra names for the listener, "name" (any port) or "name:port". */
  allowedHosts: readonly string[];
  /** `metrics.token`; absent = no token required. */
  token?: string;
  /** Paths served without the token (GET/HEAD only); the Host and origin rules still apply. */
  isPublic?: (pathname: string) => boolean;
}

export interface Refusal {
  status: number;
  error: string;
  headers?: Record<string, string>;
}

/** Sent with every answer of the admin listener. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // A response is never handed to another origin's page (no-cors loads, Spectre).
  "cross-origin-resource-policy": "same-origin",
  "x-content-type-options": "nosniff",
  // Nothing here is meant to be framed by another site (clickjacking the dashboard).
  "x-frame-options": "DENY",
};

const READ_METHODS = new Set(["GET", "HEAD"]);

/** Lower-case host name without IPv6 brackets, IPv4-mapped prefix or trailing dot. */
function normalizeName(name: string): string {
  let h = name.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.startsWith("::ffff:") && h.includes(".")) h = h.slice(7);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

/** Host header → name and port (the scheme's default when absent), or null when it is not a host[:port]. */
function parseHost(value: string, scheme: "http" | "https"): { name: string; port: number } | null {
  let url: URL;
  try {
    url = new URL(`${scheme}://${value}`);
  } catch {
    return null;
  }
  if (url.username || url.password || url.pathname !== "/" || url.search || url.hash || `${url.host}` === "") return null;
  return { name: normalizeName(url.hostname), port: url.port === "" ? (scheme === "https" ? 443 : 80) : Number(url.port) };
}

interface AllowedHost {
  name: string;
  port: number | null;
}

/** Parse one `metrics.allowedHosts` entry; null when it is not "name" or "name:port". */
export function parseAllowedHost(entry: string): AllowedHost | null {
  let url: URL;
  try {
    url = new URL(`http://${entry}`);
  } catch {
    return null;
  }
  if (url.username || url.password || url.pathname !== "/" || url.search || url.hash || url.hostname === "") return null;
  // "name:80" parses with an empty port (http's default): look at the text to keep the pin.
  const pinned = /:(\d+)$/.exec(entry.trim());
  return { name: normalizeName(url.hostname), port: pinned ? Number(pinned[1]) : null };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export interface AdminGuard {
  /** null: let the request through; otherwise answer with the refusal. */
  check(req: IncomingMessage): Refusal | null;
}

export function createAdminGuard(opts: AdminGuardOptions): AdminGuard {
  const wildcard = ["0.0.0.0", "::", "[::]", ""].includes(opts.bindHost.trim());
  const ownNames = new Set(["localhost", ...(wildcard ? [] : [normalizeName(opts.bindHost)])]);
  const allowed = opts.allowedHosts.map((h) => {
    const parsed = parseAllowedHost(h);
    if (!parsed) throw new Error(`metrics.allowedHosts: "${h}" is not a host name or host:port`);
    return parsed;
  });
  // A key per process: the token's digest under it says nothing outside this process.
  const hmacKey = randomBytes(32);
  const digest = (s: string) => createHmac("sha256", hmacKey).update(s, "utf8").digest();
  const expected = opts.token === undefined ? null : digest(opts.token);

  function hostNamesListener(req: IncomingMessage, host: { name: string; port: number }): boolean {
    if (allowed.some((a) => a.name === host.name && (a.port === null || a.port === host.port))) return true;
    if (host.port !== opts.port) return false;
    return ownNames.has(host.name) || (req.socket.localAddress !== undefined && normalizeName(req.socket.localAddress) === host.name);
  }

  function tokenMatches(authorization: string | undefined): boolean {
    if (expected === null) return true;
    const m = authorization === undefined ? null : /^bearer +(.+)$/i.exec(authorization.trim());
    // Hash whatever was given (even nothing), so the comparison costs the same either way.
    const given = digest(m ? m[1]! : "");
    return timingSafeEqual(given, expected) && m !== null;
  }

  return {
    check(req) {
      const rawHost = header(req, "host");
      const host = rawHost === undefined ? null : parseHost(rawHost, opts.scheme);
      if (!host || !hostNamesListener(req, host)) {
        return {
          status: 421,
          error: `Host header ${rawHost === undefined ? "missing" : JSON.stringify(rawHost)} does not name this listener (port ${opts.port}); list other names in metrics.allowedHosts`,
        };
      }
      const method = (req.method ?? "GET").toUpperCase();
      const origin = header(req, "origin");
      const site = header(req, "sec-fetch-site")?.toLowerCase();
      const foreignOrigin = origin !== undefined && !sameOrigin(origin, `${opts.scheme}://${rawHost}`);
      const crossSite = site === "cross-site" || site === "same-site";

      if (method === "OPTIONS") {
        // A browser preflight: never granted, so a custom header or method never goes cross-origin.
        return { status: 403, error: "cross-origin requests are not allowed" };
      }
      if (READ_METHODS.has(method)) {
        const navigation = header(req, "sec-fetch-mode") === "navigate" && (header(req, "sec-fetch-dest") ?? "document") === "document";
        if ((foreignOrigin || crossSite) && !navigation) return { status: 403, error: "cross-origin requests are not allowed" };
      } else {
        if (foreignOrigin || crossSite) return { status: 403, error: "cross-origin requests are not allowed" };
        if (header(req, REQUEST_HEADER) !== "1") {
          return { status: 403, error: `${method} requests must carry the header "X-Wasmq-Request: 1" (protection against cross-site requests)` };
        }
      }

      const pathname = pathOf(req.url);
      if (expected !== null && !(READ_METHODS.has(method) && opts.isPublic?.(pathname)) && !tokenMatches(header(req, "authorization"))) {
        return { status: 401, error: "missing or wrong token: send Authorization: Bearer <token>", headers: { "www-authenticate": "Bearer" } };
      }
      return null;
    },
  };
}

function sameOrigin(origin: string, own: string): boolean {
  try {
    // URL.origin lower-cases and drops default ports; "null" (sandboxed frames, file:) never matches.
    return origin !== "null" && new URL(origin).origin === new URL(own).origin;
  } catch {
    return false;
  }
}

function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? "/", "http://admin").pathname;
  } catch {
    return "/";
  }
}
