import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { compilePlugin } from "../host/tools/asc.js";
import { ROOT, tempDir } from "./helpers.js";

const FIXTURES = join(ROOT, "test/fixtures");
const SDK = join(ROOT, "plugins-as/sdk");

/** A cached fixture is stale when the SDK it was built against changed since. */
function newestSdkSource(): number {
  return Math.max(...readdirSync(SDK).map((f) => statSync(join(SDK, f)).mtimeMs));
}
const OUT = join(ROOT, "dist/test-fixtures");

/** Compile test/fixtures/<name>.as.ts (cached in dist/test-fixtures) and return the .wasm path. */
export async function buildFixture(name: string): Promise<string> {
  const src = join(FIXTURES, `${name}.as.ts`);
  const out = join(OUT, `${name}.wasm`);
  if (existsSync(out) && statSync(out).mtimeMs >= Math.max(statSync(src).mtimeMs, newestSdkSource())) return out;
  mkdirSync(OUT, { recursive: true });
  const result = await compilePlugin(src, out);
  if (!result.ok) throw new Error(`fixture ${name} does not compile:\n${result.output}`);
  return out;
}

/**
 * Compile AssemblyScript source text written by a test (e.g. two versions of a
 * plugin for hot reload). The file sits in test/fixtures' sibling temp folder so
 * its relative SDK import resolves.
 */
export async function buildSource(source: string, outFile: string): Promise<string> {
  const dir = join(ROOT, "dist/test-fixtures/src");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `gen-${process.pid}-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(file, source.replaceAll("SDK_PATH", relative(dir, join(ROOT, "plugins-as/sdk"))));
  const result = await compilePlugin(file, outFile);
  if (!result.ok) throw new Error(`generated plugin does not compile:\n${result.output}`);
  return outFile;
}

export function readBytes(path: string): Buffer {
  return readFileSync(path);
}

export { tempDir };
