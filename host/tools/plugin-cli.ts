/**
 * `wasmq plugin ...`: the plugin author's and release manager's commands.
 *
 *   keygen --out DIR [--name NAME]          Ed25519 key pair: DIR/NAME.key (private, mode 600) and DIR/NAME.pub
 *   sign FILE.wasm --key KEY [--out FILE]   embed a signature (section wasmq.signature, last)
 *   verify FILE.wasm --pub KEY.pub          exit 0 only when signed by that key and unmodified since
 *   inspect FILE.wasm [--pub KEY.pub] [--json]
 *   new DIR [--name NAME]                   scaffold a standalone plugin project
 *   build [DIR]                             compile a standalone project's plugin and embed its manifest
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { readManifest } from "../manifest.js";
import { readPrivateKey, readPublicKey, readSignature, SignatureError, signModule, generateSigningKeys } from "../signing.js";
import { constantExport, inspectModule, listExports, listSections } from "../wasm-binary.js";
import { HOOK_EXPORTS, HOOKS } from "../abi.js";

export class PluginCliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export const PLUGIN_HELP = `usage: wasmq plugin COMMAND [options]

Commands:
  keygen --out DIR [--name NAME]              create an Ed25519 signing key pair: DIR/NAME.key and DIR/NAME.pub
                                              (NAME defaults to "plugin-signing")
  sign FILE.wasm --key KEY [--out OUT.wasm]   sign a plugin (in place unless --out); re-signing replaces the signature
  verify FILE.wasm --pub KEY.pub              check the signature is by that key and covers the module as it is
  inspect FILE.wasm [--pub KEY.pub] [--json]  manifest, ABI version, hooks, imports, size, sha256, signature
  new DIR [--name NAME]                       scaffold a standalone plugin project (its own package.json, test, README)
  build [DIR] [--out FILE.wasm]               build a standalone plugin project (asc + manifest) into DIR/build/

Exit status: 0 ok, 1 a check failed (verify), 2 bad usage or unreadable input.`;

function readWasm(file: string | undefined): Buffer {
  if (!file) throw new PluginCliError("give a .wasm file");
  try {
    return readFileSync(file);
  } catch (err) {
    throw new PluginCliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

function writeAtomically(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
}

function keygen(values: Record<string, unknown>): string {
  const out = values.out as string | undefined;
  if (!out) throw new PluginCliError("keygen: give --out DIR");
  const name = (values.name as string | undefined) ?? "plugin-signing";
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new PluginCliError(`keygen: --name "${name}": use letters, digits, '_', '.', '-'`);
  mkdirSync(out, { recursive: true });
  const keys = generateSigningKeys();
  const priv = join(out, `${name}.key`);
  const pub = join(out, `${name}.pub`);
  for (const f of [priv, pub]) if (existsSync(f)) throw new PluginCliError(`keygen: ${f} already exists; refusing to overwrite a key`);
  writeFileSync(priv, keys.privatePem, { mode: 0o600, flag: "wx" });
  writeFileSync(pub, keys.publicPem, { flag: "wx" });
  return `key id ${keys.id}\nprivate key: ${priv} (keep it secret)\npublic key:  ${pub} (list it in the broker's "trust.keys")`;
}

function sign(file: string | undefined, values: Record<string, unknown>): string {
  const bytes = readWasm(file);
  const keyFile = values.key as string | undefined;
  if (!keyFile) throw new PluginCliError("sign: give --key PRIVATE-KEY");
  listSections(bytes); // refuses a file that is not a module
  const key = wrap(() => readPrivateKey(keyFile));
  const signed = signModule(bytes, key);
  const target = (values.out as string | undefined) ?? file!;
  writeAtomically(target, signed);
  const info = readSignature(signed);
  return `signed ${target} with key ${info.keyId} (sha256 ${sha256(signed)})`;
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SignatureError) throw new PluginCliError(err.message);
    throw err;
  }
}

function verifyCmd(file: string | undefined, values: Record<string, unknown>): string {
  const bytes = readWasm(file);
  const pubs = (values.pub as string[] | undefined) ?? [];
  if (pubs.length === 0) throw new PluginCliError("verify: give --pub PUBLIC-KEY");
  const keys = pubs.map((p) => wrap(() => readPublicKey(p)));
  const info = readSignature(bytes);
  if (info.state === "unsigned") throw new PluginCliError(`${file}: not signed`, 1);
  if (info.state === "invalid") throw new PluginCliError(`${file}: invalid signature: ${info.reason}`, 1);
  const match = keys.find((k) => k.raw.equals(info.publicKey!));
  if (!match) throw new PluginCliError(`${file}: signed by key ${info.keyId}, which is not ${keys.map((k) => `${k.id} (${k.source})`).join(" or ")}`, 1);
  return `${file}: signature OK, key ${match.id} (${match.source})`;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export interface InspectReport {
  file: string;
  size: number;
  sha256: string;
  abiVersion: number | null;
  hooks: string[];
  exports: string[];
  imports: string[];
  manifest: ReturnType<typeof readManifest> | { error: string };
  signature: { state: string; keyId: string | null; reason?: string; trustedBy?: string | null };
}

export function inspectFile(file: string, pubs: string[] = []): InspectReport {
  const bytes = readWasm(file);
  let shape;
  try {
    shape = inspectModule(bytes);
  } catch (err) {
    throw new PluginCliError(`${file}: ${(err as Error).message}`);
  }
  const exports = listExports(bytes);
  const fnExports = new Set(exports.filter((e) => e.kind === "function").map((e) => e.name));
  let manifest: InspectReport["manifest"];
  try {
    manifest = readManifest(bytes);
  } catch (err) {
    manifest = { error: (err as Error).message };
  }
  const info = readSignature(bytes);
  const signature: InspectReport["signature"] = { state: info.state, keyId: info.keyId, ...(info.reason ? { reason: info.reason } : {}) };
  if (pubs.length && info.publicKey) {
    const match = pubs.map((p) => wrap(() => readPublicKey(p))).find((k) => k.raw.equals(info.publicKey!));
    signature.trustedBy = match ? match.source : null;
  }
  return {
    file,
    size: bytes.length,
    sha256: sha256(bytes),
    abiVersion: constantExport(bytes, "wasmq_abi_version") ?? (manifest && "abi" in manifest ? manifest.abi : null),
    hooks: HOOKS.filter((h) => fnExports.has(HOOK_EXPORTS[h])),
    exports: exports.map((e) => (e.kind === "function" ? e.name : `${e.name} (${e.kind})`)),
    imports: shape.imports.map((i) => `${i.module}.${i.name}${i.kind === "function" ? "" : ` (${i.kind}${i.kind === "memory" ? ` ${i.minPages}..${i.maxPages ?? "∞"} pages` : ""})`}`),
    manifest,
    signature,
  };
}

function formatReport(r: InspectReport): string {
  const m = r.manifest;
  const manifest =
    m === null
      ? "none"
      : "error" in m
        ? `invalid: ${m.error}`
        : `${m.name} ${m.version}${m.description ? ` — ${m.description}` : ""}\n  abi ${m.abi}, hooks ${m.hooks.join(", ") || "-"}, config schema: ${m.configSchema ? "yes" : "no"}`;
  const s = r.signature;
  const signature =
    s.state === "unsigned"
      ? "unsigned"
      : s.state === "invalid"
        ? `INVALID: ${s.reason}`
        : `valid, key ${s.keyId}${s.trustedBy === undefined ? "" : s.trustedBy ? ` (trusted: ${s.trustedBy})` : " (NOT one of the given --pub keys)"}`;
  return [
    `file:      ${r.file}`,
    `size:      ${r.size} bytes`,
    `sha256:    ${r.sha256}`,
    `abi:       ${r.abiVersion ?? "unknown"}`,
    `hooks:     ${r.hooks.join(", ") || "none"}`,
    `imports:   ${r.imports.join(", ") || "none"}`,
    `manifest:  ${manifest}`,
    `signature: ${signature}`,
  ].join("\n");
}

/** Run `wasmq plugin ARGS`; returns what to print, throws PluginCliError. */
export async function runPluginCli(argv: string[]): Promise<string> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") return PLUGIN_HELP;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        out: { type: "string" },
        name: { type: "string" },
        key: { type: "string" },
        pub: { type: "string", multiple: true },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new PluginCliError(`${(err as Error).message}\n\n${PLUGIN_HELP}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return PLUGIN_HELP;
  const file = positionals[0];
  switch (command) {
    case "keygen":
      return keygen(values);
    case "sign":
      return sign(file, values);
    case "verify":
      return verifyCmd(file, values);
    case "inspect": {
      if (!file) throw new PluginCliError("inspect: give a .wasm file");
      const report = inspectFile(file, values.pub ?? []);
      return values.json ? JSON.stringify(report, null, 2) : formatReport(report);
    }
    case "new": {
      const { scaffoldProject } = await import("./project.js");
      if (!file) throw new PluginCliError("new: give the project folder (wasmq plugin new DIR)");
      return scaffoldProject(resolve(file), values.name ?? basename(resolve(file)));
    }
    case "build": {
      const { buildProject } = await import("./project.js");
      return buildProject(resolve(file ?? "."), values.out);
    }
    default:
      throw new PluginCliError(`unknown command "${command}"\n\n${PLUGIN_HELP}`);
  }
}
