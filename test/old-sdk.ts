// Build an example plugin with the SDK of a past commit (`git archive`), to
// prove binaries from before an ABI change keep loading and deciding as before.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { compilePlugin } from "../host/tools/asc.js";
import { ROOT } from "./helpers.js";

/** main just before ABI v2: its SDK builds v1 binaries. */
export const BEFORE_V2 = "6b0701f";

export function hasCommit(commit: string): boolean {
  return spawnSync("git", ["-C", ROOT, "cat-file", "-e", `${commit}^{commit}`]).status === 0;
}

/** Compile plugins-as/<plugin> as it was at `commit` into `dir`; returns the .wasm path. */
export async function buildPluginAt(commit: string, plugin: string, dir: string): Promise<string> {
  const src = join(dir, `src-${plugin}-${commit}`);
  mkdirSync(src, { recursive: true });
  const archive = spawnSync("sh", ["-c", `git -C '${ROOT}' archive ${commit} plugins-as/sdk plugins-as/${plugin} | tar -x -C '${src}'`]);
  assert.equal(archive.status, 0, archive.stderr?.toString());
  const out = join(dir, `${plugin}-${commit}.wasm`);
  const built = await compilePlugin(join(src, `plugins-as/${plugin}/plugin.ts`), out);
  assert.ok(built.ok, built.output);
  return out;
}
