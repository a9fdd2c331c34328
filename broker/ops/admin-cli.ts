/**
 * `wasmq admin ...`: the admin API from a shell. Talks HTTP to a running
 * broker's metrics/admin port; prints tables (or --json) and exits non-zero
 * with the API's error message when a request fails.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { checkServerIdentity, rootCertificates, type PeerCertificate } from "node:tls";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.js";
import type { StoreView } from "./admin-store.js";

export const ADMIN_HELP = `wasmq admin — control a running broker through its admin API

Usage:
  wasmq admin plugins                 list plugins with state and statistics
  wasmq admin reload NAME             reload a plugin from disk (the old build keeps running if the new one is refused)
  wasmq admin upload NAME FILE        send a new .wasm build to the broker and swap it in (saved over the plugin's file)
  wasmq admin enable NAME             enable a plugin
  wasmq admin disable NAME            disable a plugin (it is skipped until enabled again)
  wasmq admin clients                 list connected clients
  wasmq admin kick ID                 disconnect a client (its will is discarded; --will publishes it)
  wasmq admin bridges                 list bridges: connection, queue depth and age, forwarded/received/dropped/resent
  wasmq admin store                   the store: retained, sessions, queued messages, and what the write hold did (LMDB)
  wasmq admin cluster                 cluster mode: nodes, their clients and plugin digests, the Redis link
  wasmq admin deploy NAME FILE        cluster mode: run a .wasm build on every node (refused everywhere if this node refuses it)
  wasmq admin rollback NAME           cluster mode: every node back to the previously deployed build

Options:
      --url URL        admin API address, http:// or https:// (default: from --config, else $WASMQ_ADMIN_URL, else http://127.0.0.1:9464)
      --token TOKEN    bearer token (default: from --config, else $WASMQ_ADMIN_TOKEN)
  -c, --config FILE    read the address, token and TLS certificate from the broker's config file ("metrics" key)
      --ca FILE        trust this CA bundle (PEM) for an https:// admin API, instead of the system's
      --insecure       https:// without verifying the certificate (testing only)
      --json           print the API's JSON instead of a table
      --will           with kick: publish the client's will message
      --dry-run        with upload: check the build (digest, hooks, init) without applying it
      --no-save        with upload: apply it without replacing the plugin's file
  -h, --help           show this help`;

export class AdminCliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "AdminCliError";
  }
}

interface Target {
  url: string;
  token: string | undefined;
  /** Trusted CAs for https (undefined: the system's). */
  ca?: (string | Buffer)[];
  insecure: boolean;
  /** SHA-256 fingerprint of the broker's own certificate, read from its config: accepted whatever name it carries. */
  pinned?: string;
}

function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AdminCliError(`${option}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
}

function target(values: { url?: string; token?: string; config?: string; ca?: string; insecure?: boolean }): Target {
  let url = values.url;
  let token = values.token;
  let ca: (string | Buffer)[] | undefined;
  let pinned: string | undefined;
  if (values.config) {
    let metrics;
    try {
      metrics = loadConfig(values.config).metrics;
    } catch (err) {
      if (err instanceof ConfigError) throw new AdminCliError(err.message, 2);
      throw err;
    }
    if (!metrics) throw new AdminCliError(`${values.config} has no "metrics" key: the admin API is not served`, 2);
    const host = metrics.host === "0.0.0.0" ? "127.0.0.1" : metrics.host === "::" ? "::1" : metrics.host;
    url ??= `${metrics.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${metrics.port}`;
    token ??= metrics.token;
    if (metrics.tls) {
      // The broker's own certificate (self-signed or not) is trusted and pinned, so
      // reaching it as 127.0.0.1 works whatever names the certificate lists.
      const cert = readPem(metrics.tls.cert, "metrics.tls.cert");
      ca = [...rootCertificates, cert, ...(metrics.tls.ca ? [readPem(metrics.tls.ca, "metrics.tls.ca")] : [])];
      try {
        pinned = new X509Certificate(cert).fingerprint256;
      } catch (err) {
        throw new AdminCliError(`metrics.tls.cert: ${metrics.tls.cert} is not a PEM certificate: ${(err as Error).message}`, 2);
      }
    }
  }
  if (values.ca) ca = [readPem(values.ca, "--ca")];
  url ??= process.env.WASMQ_ADMIN_URL ?? "http://127.0.0.1:9464";
  token ??= process.env.WASMQ_ADMIN_TOKEN;
  return { url: url.replace(/\/+$/, ""), token, insecure: values.insecure ?? false, ...(ca ? { ca } : {}), ...(pinned ? { pinned } : {}) };
}

/** One request with node:http (loads faster than fetch, which matters for a command-line tool). */
function request(t: Target, method: string, path: string, body?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(`${t.url}${path}`);
    } catch {
      return reject(new AdminCliError(`--url: "${t.url}" is not a URL`, 2));
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return reject(new AdminCliError(`--url: the admin API speaks http:// or https://, got ${url.protocol}`, 2));
    // X-Wasmq-Request: the admin API refuses state-changing requests without it (cross-site request protection).
    const options: RequestOptions & { ca?: (string | Buffer)[]; rejectUnauthorized?: boolean; checkServerIdentity?: typeof checkServerIdentity } = {
      method,
      headers: {
        "x-wasmq-request": "1",
        ...(t.token ? { authorization: `Bearer ${t.token}` } : {}),
        ...(body ? { "content-type": "application/wasm", "content-length": String(body.length) } : {}),
      },
    };
    if (url.protocol === "https:") {
      if (t.ca) options.ca = t.ca;
      if (t.insecure) options.rejectUnauthorized = false;
      const pinned = t.pinned;
      if (pinned) options.checkServerIdentity = (host: string, cert: PeerCertificate) => (cert.fingerprint256 === pinned ? undefined : checkServerIdentity(host, cert));
    }
    const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", (err: NodeJS.ErrnoException) => {
      const tlsHint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(err.code ?? "") ? " (trust its certificate with --ca FILE or --config, or skip the check with --insecure)" : "";
      reject(new AdminCliError(`cannot reach the admin API at ${t.url}: ${err.code ?? err.message}${tlsHint}`, 1));
    });
    req.end(body);
  });
}

async function call(t: Target, method: string, path: string, payload?: Buffer): Promise<unknown> {
  const { status, text } = await request(t, method, path, payload);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AdminCliError(`${method} ${path}: HTTP ${status}, not JSON: ${text.slice(0, 200)}`, 1);
  }
  if (status < 200 || status >= 300) {
    const message = (body as { error?: string }).error ?? `HTTP ${status}`;
    throw new AdminCliError(`${method} ${path}: ${message} (HTTP ${status})`, 1);
  }
  return body;
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

interface PluginView {
  name: string;
  kind: string;
  enabled: boolean;
  ready: boolean;
  breaker: string;
  hooks: string[];
  /** Declared idle by the running instance (host/abi-idle.ts): not called. */
  idleHooks?: string[];
  lastError: string | null;
  stats: { calls: Record<string, number>; traps: Record<string, number>; reloads: number };
  signature?: SignatureView | null;
}
/** What the broker's trust check said of a Wasm build (host/signing.ts TrustStatus). */
interface SignatureView {
  signature: string;
  keyId: string | null;
  trusted: boolean;
}
function signatureText(s: SignatureView | null | undefined): string {
  if (!s) return "-";
  if (s.signature !== "valid") return s.signature;
  return `${s.trusted ? "trusted" : "untrusted"} ${s.keyId}`;
}
interface ClientView {
  id: string;
  username: string | null;
  remote: string;
  clean: boolean;
  subscriptions: { topic: string; qos: number }[];
  sendQueueBytes: number;
  inflightOut: number;
  waitingOut: number;
}

interface BridgeView {
  name: string;
  connected: boolean;
  url: string;
  lastError: string | null;
  queue: { messages: number; bytes: number; oldestAgeSec: number | null; inflight: number; window: number };
  forwarded: number;
  received: number;
  dropped: Record<string, number>;
  resent: number;
}

interface UploadView {
  plugin: string;
  sha256: string;
  size: number;
  hooks: string[];
  signature?: SignatureView;
  applied: boolean;
  saved: boolean;
  warning?: string;
}

async function upload(values: Parameters<typeof target>[0] & { json?: boolean; "dry-run"?: boolean; "no-save"?: boolean }, name: string | undefined, rest: string[]): Promise<string> {
  const [file, ...extra] = rest;
  if (name === undefined || file === undefined) throw new AdminCliError("wasmq admin upload: give a plugin name and a .wasm file", 2);
  if (extra.length > 0) throw new AdminCliError(`wasmq admin upload: unexpected argument "${extra[0]}"`, 2);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new AdminCliError(`wasmq admin upload: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
  const query = new URLSearchParams();
  if (values["dry-run"]) query.set("dryRun", "true");
  if (values["no-save"]) query.set("save", "false");
  const q = query.size > 0 ? `?${query}` : "";
  const body = (await call(target(values), "POST", `/plugins/${encodeURIComponent(name)}/upload${q}`, bytes)) as UploadView;
  if (values.json) return JSON.stringify(body, null, 2);
  const what = `${body.size} bytes, sha256 ${body.sha256}, hooks ${body.hooks.join(",") || "-"}, signature ${signatureText(body.signature)}`;
  if (!body.applied) return `plugin ${body.plugin}: the build is acceptable (${what}); not applied`;
  return `plugin ${body.plugin} now runs the uploaded build (${what})${body.saved ? "" : `; not saved${body.warning ? `: ${body.warning}` : ""}`}`;
}

const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);

/** Run `wasmq admin <argv>`; resolves to the text to print. */
export async function runAdmin(argv: string[]): Promise<string> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        config: { type: "string", short: "c" },
        json: { type: "boolean" },
        will: { type: "boolean" },
        "dry-run": { type: "boolean" },
        "no-save": { type: "boolean" },
        ca: { type: "string" },
        insecure: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new AdminCliError(`${(err as Error).message}\nRun "wasmq admin --help" for the commands.`, 2);
  }
  const { values, positionals } = parsed;
  const [command, arg, ...extra] = positionals;
  if (values.help || command === undefined) return ADMIN_HELP;
  if (command === "upload") return upload(values, arg, extra);
  if (command === "deploy" || command === "rollback" || command === "cluster") {
    const { clusterCommand } = await import("./admin-cli-cluster.js");
    return clusterCommand(command, arg, extra, { target: target(values), json: !!values.json, call });
  }
  const needsArg = ["reload", "enable", "disable", "kick"].includes(command);
  if (!needsArg && !["plugins", "clients", "bridges", "store"].includes(command)) {
    throw new AdminCliError(`unknown admin command "${command}"\nRun "wasmq admin --help" for the commands.`, 2);
  }
  if (needsArg && arg === undefined) throw new AdminCliError(`wasmq admin ${command}: give a ${command === "kick" ? "client id" : "plugin name"}`, 2);
  if ((needsArg ? extra.length : arg !== undefined ? 1 : 0) > 0) throw new AdminCliError(`wasmq admin ${command}: unexpected argument "${needsArg ? extra[0] : arg}"`, 2);
  const t = target(values);
  const json = (body: unknown) => JSON.stringify(body, null, 2);

  switch (command) {
    case "plugins": {
      const body = (await call(t, "GET", "/plugins")) as { plugins: PluginView[] };
      if (values.json) return json(body);
      if (body.plugins.length === 0) return "no plugins configured";
      return table(
        ["NAME", "KIND", "ENABLED", "READY", "BREAKER", "HOOKS", "SIGNATURE", "CALLS", "TRAPS", "RELOADS", "LAST ERROR"],
        body.plugins.map((p) => [
          p.name,
          p.kind,
          p.enabled ? "yes" : "no",
          p.ready ? "yes" : "no",
          p.breaker,
          p.hooks.map((hook) => (p.idleHooks?.includes(hook) ? `${hook}(idle)` : hook)).join(",") || "-",
          signatureText(p.signature),
          String(sum(p.stats.calls)),
          String(sum(p.stats.traps)),
          String(p.stats.reloads),
          p.lastError ?? "",
        ]),
      );
    }
    case "clients": {
      const body = (await call(t, "GET", "/clients")) as { clients: ClientView[] };
      if (values.json) return json(body);
      if (body.clients.length === 0) return "no clients connected";
      return table(
        ["ID", "USERNAME", "REMOTE", "CLEAN", "SUBSCRIPTIONS", "IN FLIGHT", "SEND QUEUE"],
        body.clients.map((c) => [
          c.id,
          c.username ?? "-",
          c.remote,
          c.clean ? "yes" : "no",
          c.subscriptions.map((s) => `${s.topic}@${s.qos}`).join(" ") || "-",
          c.waitingOut > 0 ? `${c.inflightOut} (+${c.waitingOut} waiting)` : String(c.inflightOut),
          `${c.sendQueueBytes} B`,
        ]),
      );
    }
    case "bridges": {
      const body = (await call(t, "GET", "/bridges")) as { bridges: BridgeView[] };
      if (values.json) return json(body);
      if (body.bridges.length === 0) return "no bridges configured";
      return table(
        ["NAME", "CONNECTED", "URL", "QUEUED", "OLDEST", "IN FLIGHT", "FORWARDED", "RECEIVED", "DROPPED", "RESENT", "LAST ERROR"],
        body.bridges.map((b) => [
          b.name,
          b.connected ? "yes" : "no",
          b.url,
          `${b.queue.messages} (${b.queue.bytes} B)`,
          b.queue.oldestAgeSec === null ? "-" : `${b.queue.oldestAgeSec.toFixed(1)} s`,
          `${b.queue.inflight}/${b.queue.window}`,
          String(b.forwarded),
          String(b.received),
          String(sum(b.dropped)),
          String(b.resent),
          b.connected ? "" : (b.lastError ?? ""),
        ]),
      );
    }
    case "store": {
      const { storeText } = await import("./admin-cli-store.js");
      return storeText((await call(t, "GET", "/store")) as StoreView, !!values.json);
    }
    case "reload": {
      const body = (await call(t, "POST", `/plugins/${encodeURIComponent(arg!)}/reload`)) as { plugin: string };
      return values.json ? json(body) : `plugin ${body.plugin} reloaded`;
    }
    case "enable":
    case "disable": {
      const body = (await call(t, "POST", `/plugins/${encodeURIComponent(arg!)}/${command}`)) as { plugin: string };
      return values.json ? json(body) : `plugin ${body.plugin} ${command}d`;
    }
    default: {
      const body = (await call(t, "DELETE", `/clients/${encodeURIComponent(arg!)}${values.will ? "?will=true" : ""}`)) as { client: string };
      return values.json ? json(body) : `client ${body.client} disconnected`;
    }
  }
}
