#!/usr/bin/env node
/**
 * Scaffold a new plugin that builds and passes its test straight away:
 *
 *   npm run plugin:new -- NAME
 *
 * creates plugins-as/NAME/{plugin.ts, native.ts, config.example.json,
 * messages.jsonl, README.md, manifest.json} and test/plugin-NAME.test.ts (where `npm test`
 * finds it) from the templates in host/tools/templates/.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./root.js";

const TEMPLATES = join(ROOT, "host/tools/templates");

/** Template file → where it goes, relative to the repository root. */
function outputs(name: string): { template: string; path: string }[] {
  const dir = join("plugins-as", name);
  return [
    { template: "plugin.ts.tmpl", path: join(dir, "plugin.ts") },
    { template: "native.ts.tmpl", path: join(dir, "native.ts") },
    { template: "config.example.json.tmpl", path: join(dir, "config.example.json") },
    { template: "messages.jsonl.tmpl", path: join(dir, "messages.jsonl") },
    { template: "README.md.tmpl", path: join(dir, "README.md") },
    { template: "manifest.json.tmpl", path: join(dir, "manifest.json") },
    { template: "test.ts.tmpl", path: join("test", `plugin-${name}.test.ts`) },
  ];
}

// Folders under plugins-as/ that are not plugins.
const RESERVED = new Set(["sdk", "native-sdk", "node_modules"]);

/** Why NAME cannot be a new plugin, or null when it can. */
export function invalidPluginName(name: string): string | null {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || name.endsWith("-") || name.includes("--")) {
    return `"${name}" is not a valid plugin name: use lowercase letters, digits and single '-' between them, starting with a letter (e.g. "temp-limit")`;
  }
  if (name.length > 64) return `"${name}" is too long: at most 64 characters`;
  if (RESERVED.has(name)) return `"${name}" is reserved: plugins-as/${name}/ is not a plugin folder`;
  if (existsSync(join(ROOT, "plugins-as", name))) return `plugins-as/${name}/ already exists: choose another name or remove it first`;
  const test = join(ROOT, "test", `plugin-${name}.test.ts`);
  if (existsSync(test)) return `${relative(ROOT, test)} already exists: choose another name or remove it first`;
  return null;
}

/** Write the plugin's files; returns their paths relative to the repository root. */
function scaffoldPlugin(name: string): string[] {
  const problem = invalidPluginName(name);
  if (problem) throw new Error(problem);
  const dir = join(ROOT, "plugins-as", name);
  // Fails if the folder appeared since the check: never write into (or clean up) someone else's plugin.
  mkdirSync(dir);
  const written: string[] = [];
  try {
    for (const { template, path } of outputs(name)) {
      const text = readFileSync(join(TEMPLATES, template), "utf8").replaceAll("{{name}}", name);
      writeFileSync(join(ROOT, path), text, { flag: "wx" });
      written.push(path);
    }
  } catch (err) {
    // Leave nothing half made: a second attempt must not find an "existing" plugin.
    for (const path of written) rmSync(join(ROOT, path), { force: true });
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return written;
}

function nextSteps(name: string): string {
  return `Next steps:
  1. Edit plugins-as/${name}/plugin.ts (AssemblyScript) and its twin plugins-as/${name}/native.ts.
  2. Build it:            npm run build:plugins -- ${name}
  3. Try it, no broker:   npm run harness -- --plugin ${name} plugins-as/${name}/messages.jsonl
                          (add --native for the twin, --json for JSON output)
  4. Run its test:        node --test dist/test/plugin-${name}.test.js   (after a build; npm test runs everything)
  5. Add it to a broker config's "plugins" (the path is relative to the config file; here, one in the repository root):
       { "name": "${name}", "wasm": "dist/plugins/${name}.wasm", "config": { "topic": "sensors/#", "max": 100 } }
     then npm start -- --config YOUR-CONFIG.json; rebuilding hot-reloads it in the running broker.
  The walkthrough: examples/README.md`;
}

const USAGE = `usage: npm run plugin:new -- NAME

Creates plugins-as/NAME/ (plugin.ts, native.ts, config.example.json, messages.jsonl,
README.md) and test/plugin-NAME.test.ts. NAME: lowercase letters, digits and '-'.`;

function main(argv: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: "boolean", short: "h" } } });
  } catch (err) {
    process.stderr.write(`plugin:new: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    process.stderr.write(`plugin:new: give exactly one plugin name\n${USAGE}\n`);
    return 2;
  }
  const name = parsed.positionals[0]!;
  const problem = invalidPluginName(name);
  if (problem) {
    process.stderr.write(`plugin:new: ${problem}\n`);
    return 2;
  }
  const files = scaffoldPlugin(name);
  process.stdout.write(`Created plugin ${name}:\n${files.map((f) => `  ${f}\n`).join("")}\n${nextSteps(name)}\n`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`plugin:new: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
