#!/usr/bin/env node
/**
 * Build AssemblyScript plugins: every `plugins-as/<name>/plugin.ts` becomes
 * `dist/plugins/<name>.wasm`, with `plugins-as/<name>/manifest.json` embedded as its
 * `wasmq.manifest` section. Up-to-date builds are skipped.
 *
 *   npm run build:plugins               build all
 *   npm run build:plugins -- acl        build one (or several)
 *   npm run build:plugins -- --force    rebuild even when up to date
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, ASCONFIG, compilePlugin } from "./asc.js";
import { embedManifestFile, MANIFEST_FILE } from "./embed-manifest.js";

const PLUGINS_DIR = resolve(ROOT, "plugins-as");
const OUT_DIR = resolve(ROOT, "dist/plugins");

export function listPlugins(): string[] {
  return readdirSync(PLUGINS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(PLUGINS_DIR, d.name, "plugin.ts")))
    .map((d) => d.name)
    .sort();
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // native.ts and native/ hold the TypeScript twin, which tsc builds, not asc.
    if (entry.isDirectory()) {
      if (entry.name !== "native") newest = Math.max(newest, newestSource(path));
    }
    else if ((entry.name.endsWith(".ts") && entry.name !== "native.ts") || entry.name === MANIFEST_FILE) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export function wasmPath(name: string): string {
  return join(OUT_DIR, `${name}.wasm`);
}

async function buildPlugins(names: string[], force = false, log: (line: string) => void = console.log): Promise<boolean> {
  const shared = Math.max(newestSource(join(PLUGINS_DIR, "sdk")), statSync(ASCONFIG).mtimeMs);
  let ok = true;
  for (const name of names) {
    const dir = join(PLUGINS_DIR, name);
    if (!existsSync(join(dir, "plugin.ts"))) {
      log(`✗ ${name}: no plugins-as/${name}/plugin.ts`);
      ok = false;
      continue;
    }
    const out = wasmPath(name);
    if (!force && existsSync(out) && statSync(out).mtimeMs >= Math.max(shared, newestSource(dir))) continue;
    const result = await compilePlugin(join(dir, "plugin.ts"), out);
    // The manifest goes in after compiling and before any signing (a signature covers it).
    if (result.ok) {
      const problem = embedManifestFile(out, join(dir, MANIFEST_FILE));
      if (problem) {
        log(`✗ ${name}: ${problem}`);
        ok = false;
        continue;
      }
      log(`✓ ${name} → ${out.slice(ROOT.length + 1)} (${statSync(out).size} bytes)`);
    } else {
      log(`✗ ${name}:\n${result.output}`);
      ok = false;
    }
  }
  return ok;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { force: { type: "boolean", default: false } } });
  const names = positionals.length ? positionals : listPlugins();
  buildPlugins(names, values.force).then((ok) => process.exit(ok ? 0 : 1));
}
