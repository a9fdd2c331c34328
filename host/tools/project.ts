/**
 * Standalone plugin projects: `wasmq plugin new DIR` scaffolds one anywhere,
 * `wasmq plugin build` compiles it with the AssemblyScript compiler wasmq ships
 * and embeds its manifest. The project imports the SDK as
 * "wasmq/plugins-as/sdk" (asc resolves it in node_modules/wasmq) and tests its
 * build with "wasmq/harness".
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import asc from "assemblyscript/asc";
import { embedManifestFile, MANIFEST_FILE } from "./embed-manifest.js";
import { PluginCliError } from "./plugin-cli.js";
import { ROOT } from "./root.js";

const TEMPLATES = join(ROOT, "host/tools/templates/project");

const FILES: { template: string; path: string }[] = [
  { template: "package.json.tmpl", path: "package.json" },
  { template: "asconfig.json.tmpl", path: "asconfig.json" },
  { template: "manifest.json.tmpl", path: MANIFEST_FILE },
  { template: "plugin.ts.tmpl", path: "assembly/plugin.ts" },
  { template: "config.example.json.tmpl", path: "config.example.json" },
  { template: "plugin.test.mjs.tmpl", path: "test/plugin.test.mjs" },
  { template: "README.md.tmpl", path: "README.md" },
];

function wasmqVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
}

export function scaffoldProject(dir: string, name: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || name.endsWith("-") || name.includes("--") || name.length > 64) {
    throw new PluginCliError(`new: "${name}" is not a valid plugin name: lowercase letters, digits and single '-', starting with a letter (give --name)`);
  }
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new PluginCliError(`new: ${dir} exists and is not empty`);
  const version = wasmqVersion();
  for (const { template, path } of FILES) {
    const target = join(dir, path);
    mkdirSync(resolve(target, ".."), { recursive: true });
    const text = readFileSync(join(TEMPLATES, template), "utf8").replaceAll("{{name}}", name).replaceAll("{{wasmqVersion}}", version);
    writeFileSync(target, text, { flag: "wx" });
  }
  const rel = relative(process.cwd(), dir) || ".";
  return `Created plugin project ${name} in ${rel}:
${FILES.map((f) => `  ${f.path}`).join("\n")}

Next:
  cd ${rel}
  npm install        (if wasmq is not installed in a parent folder already)
  npm test           builds build/${name}.wasm and tests it with wasmq's harness
  npm run inspect    what the build declares; npm run keygen && npm run sign to sign it`;
}

/** Compile a project (its asconfig.json) and embed its manifest.json. */
export async function buildProject(dir: string, out?: string): Promise<string> {
  const config = join(dir, "asconfig.json");
  if (!existsSync(config)) throw new PluginCliError(`build: ${config} does not exist (run it in a plugin project, or give its folder)`);
  const manifestFile = join(dir, MANIFEST_FILE);
  let name = "plugin";
  if (existsSync(manifestFile)) {
    try {
      name = (JSON.parse(readFileSync(manifestFile, "utf8")) as { name?: string }).name ?? name;
    } catch {
      // embedManifestFile reports the broken manifest below.
    }
  }
  const outFile = resolve(out ?? join(dir, "build", `${name}.wasm`));
  mkdirSync(resolve(outFile, ".."), { recursive: true });
  let output = "";
  const sink = { write: (chunk: string | Uint8Array) => ((output += chunk.toString()), true) };
  const { error } = await asc.main(["--config", config, "--baseDir", dir, "--target", "release", "--outFile", outFile], {
    stdout: sink as never,
    stderr: sink as never,
  });
  if (error) throw new PluginCliError(`build failed:\n${output}${error.message}`, 1);
  const problem = embedManifestFile(outFile, manifestFile);
  if (problem) throw new PluginCliError(`build: ${problem}`, 1);
  return `built ${relative(process.cwd(), outFile) || outFile}${existsSync(manifestFile) ? " (manifest embedded)" : " (no manifest.json: no manifest embedded)"}`;
}
