/**
 * The plugin manifest: what a build says about itself, embedded in a custom
 * section named `wasmq.manifest` (UTF-8 JSON) so it travels with the module and
 * is covered by its signature:
 *   { "name", "version", "description", "abi", "hooks": [...], "configSchema": {JSON Schema} }
 * The broker validates a plugin's `config` against `configSchema` before the
 * plugin's init runs (start, reload, upload), naming the offending key.
 */
import { Ajv, type ErrorObject } from "ajv";
import { ABI_VERSION, HOOK_EXPORTS, HOOKS, type HookName } from "./abi.js";
import { customSections, encodeCustomSection, listExports, withoutCustomSections } from "./wasm-binary.js";
import { SIGNATURE_SECTION } from "./signing.js";

export const MANIFEST_SECTION = "wasmq.manifest";

export interface PluginManifest {
  name: string;
  version: string;
  description?: string;
  abi: number;
  hooks: HookName[];
  configSchema?: Record<string, unknown>;
}

/** What an author writes beside the plugin (manifest.json); the build adds abi and hooks. */
export interface ManifestSource {
  name: string;
  version: string;
  description?: string;
  configSchema?: Record<string, unknown>;
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/** The hooks a module exports, in ABI order. */
export function exportedHooks(bytes: Uint8Array): HookName[] {
  const names = new Set(listExports(bytes).filter((e) => e.kind === "function").map((e) => e.name));
  return HOOKS.filter((h) => names.has(HOOK_EXPORTS[h]));
}

/** The manifest in a module, or null when it has none. Throws ManifestError when it is malformed. */
export function readManifest(bytes: Uint8Array): PluginManifest | null {
  const found = customSections(bytes, MANIFEST_SECTION);
  if (found.length === 0) return null;
  if (found.length > 1) throw new ManifestError(`it has ${found.length} ${MANIFEST_SECTION} sections`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(found[0]!).toString("utf8"));
  } catch (err) {
    throw new ManifestError(`its ${MANIFEST_SECTION} section is not JSON: ${(err as Error).message}`);
  }
  const problem = manifestProblem(json);
  if (problem) throw new ManifestError(`its ${MANIFEST_SECTION} section is invalid: ${problem}`);
  return json as PluginManifest;
}

function manifestProblem(m: unknown): string | null {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return "not an object";
  const o = m as Record<string, unknown>;
  if (typeof o.name !== "string" || o.name === "") return `"name" must be a non-empty string`;
  if (typeof o.version !== "string" || o.version === "") return `"version" must be a non-empty string`;
  if (o.description !== undefined && typeof o.description !== "string") return `"description" must be a string`;
  if (o.abi !== undefined && !Number.isInteger(o.abi)) return `"abi" must be an integer`;
  if (o.hooks !== undefined && !(Array.isArray(o.hooks) && o.hooks.every((h) => (HOOKS as readonly unknown[]).includes(h)))) {
    return `"hooks" must list hook names (${HOOKS.join(", ")})`;
  }
  if (o.configSchema !== undefined && (typeof o.configSchema !== "object" || o.configSchema === null || Array.isArray(o.configSchema))) {
    return `"configSchema" must be a JSON Schema object`;
  }
  return null;
}

/** Check a manifest source (manifest.json) as the build reads it; throws ManifestError naming the file. */
export function parseManifestSource(text: string, file: string): ManifestSource {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const problem = manifestProblem(json);
  if (problem) throw new ManifestError(`${file}: ${problem}`);
  if (typeof (json as ManifestSource).configSchema === "object") {
    const compiled = compileSchema((json as ManifestSource).configSchema!);
    if (typeof compiled === "string") throw new ManifestError(`${file}: "configSchema" is not a valid JSON Schema: ${compiled}`);
  }
  return json as ManifestSource;
}

/**
 * The module with `source` embedded as its manifest (abi and hooks filled in
 * from the build). Any previous manifest and signature are removed: a signature
 * must be made after the manifest is in place.
 */
export function embedManifest(bytes: Uint8Array, source: ManifestSource): Uint8Array {
  const bare = withoutCustomSections(withoutCustomSections(bytes, SIGNATURE_SECTION), MANIFEST_SECTION);
  const manifest: PluginManifest = {
    name: source.name,
    version: source.version,
    ...(source.description !== undefined ? { description: source.description } : {}),
    abi: ABI_VERSION,
    hooks: exportedHooks(bare),
    ...(source.configSchema !== undefined ? { configSchema: source.configSchema } : {}),
  };
  return Buffer.concat([bare, encodeCustomSection(MANIFEST_SECTION, Buffer.from(JSON.stringify(manifest), "utf8"))]);
}

const ajv = new Ajv({ allErrors: false, strict: false });

type Validator = ReturnType<typeof ajv.compile>;
const compiledSchemas = new Map<string, Validator>();

function compileSchema(schema: Record<string, unknown>): Validator | string {
  const key = JSON.stringify(schema);
  const cached = compiledSchemas.get(key);
  if (cached) return cached;
  try {
    const validate = ajv.compile(schema);
    compiledSchemas.set(key, validate);
    return validate;
  } catch (err) {
    return (err as Error).message;
  }
}

/** "rules.0.access" from Ajv's "/rules/0/access", plus the property a required/additional error is about. */
function keyOf(e: ErrorObject): string {
  const parts = e.instancePath.split("/").slice(1).map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
  const params = e.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
  if (params.missingProperty !== undefined) parts.push(params.missingProperty);
  if (params.additionalProperty !== undefined) parts.push(params.additionalProperty);
  return parts.join(".");
}

function describeError(e: ErrorObject): string {
  const key = keyOf(e);
  const params = e.params as { additionalProperty?: string; allowedValues?: unknown[] };
  let what = e.message ?? "is invalid";
  if (params.additionalProperty !== undefined) what = "is not a known key";
  if (params.allowedValues) what += ` (${params.allowedValues.map((v) => JSON.stringify(v)).join(", ")})`;
  return `config key "${key || "(root)"}" ${what.startsWith("must") || what.startsWith("is") ? what : `: ${what}`}`;
}

/** Why `config` does not satisfy the manifest's schema, or null when it does (or there is no schema). */
export function configProblem(manifest: PluginManifest | null, config: unknown): string | null {
  if (!manifest?.configSchema) return null;
  const validate = compileSchema(manifest.configSchema);
  if (typeof validate === "string") return `its manifest's configSchema is not a valid JSON Schema: ${validate}`;
  if (validate(config)) return null;
  return describeError(validate.errors![0]!);
}
