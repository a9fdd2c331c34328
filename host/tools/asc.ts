import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import asc from "assemblyscript/asc";
import { ROOT } from "./root.js";

export { ROOT };
export const ASCONFIG = resolve(ROOT, "asconfig.json");

export interface CompileResult {
  ok: boolean;
  output: string;
}

/** Compile one AssemblyScript entry to a .wasm with the project's asconfig.json. */
export async function compilePlugin(entry: string, outFile: string, opts: { target?: "release" | "debug"; extraArgs?: string[] } = {}): Promise<CompileResult> {
  mkdirSync(dirname(outFile), { recursive: true });
  let output = "";
  const sink = { write: (chunk: string | Uint8Array) => ((output += chunk.toString()), true) };
  const { error } = await asc.main(
    [entry, "--config", ASCONFIG, "--target", opts.target ?? "release", "--outFile", outFile, ...(opts.extraArgs ?? [])],
    { stdout: sink as never, stderr: sink as never },
  );
  return { ok: !error, output: error ? `${output}${error.message}` : output };
}
