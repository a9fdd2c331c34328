/**
 * Build the dashboard's browser code into dist/dashboard/: esbuild bundles
 * web/main.ts (TypeScript, uPlot, and — split into a chunk loaded only by the
 * MQTT page — mqtt.js's browser build) and its CSS; index.html is copied.
 * Type-checking the browser code is `tsc -p broker/ops/dashboard/web`.
 *
 *   node dist/broker/ops/dashboard/build.js [--watch]
 */
import { build, context, type BuildOptions } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const WEB = `${ROOT}broker/ops/dashboard/web/`;
const OUT = `${ROOT}dist/dashboard/`;

export const OPTIONS: BuildOptions = {
  entryPoints: { app: `${WEB}main.ts` },
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  minify: true,
  legalComments: "none",
  chunkNames: "chunk-[hash]",
  // The playground runs host/ modules written for Node's Buffer; this gives them the `buffer` package's.
  inject: [`${WEB}buffer-shim.ts`],
  // host/output-rules.ts takes isUtf8 from node:buffer; the page gets an equivalent.
  alias: { "node:buffer": `${WEB}node-buffer-shim.ts` },
  logLevel: "warning",
};

async function main(): Promise<void> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  copyFileSync(`${WEB}index.html`, `${OUT}index.html`);
  if (process.argv.includes("--watch")) {
    const ctx = await context(OPTIONS);
    await ctx.watch();
    process.stdout.write(`watching ${WEB}\n`);
    return;
  }
  const result = await build({ ...OPTIONS, metafile: true });
  const sizes = Object.entries(result.metafile!.outputs).map(([f, o]) => `${f.replace(ROOT, "")} ${(o.bytes / 1024).toFixed(0)} KiB`);
  process.stdout.write(`dashboard: ${sizes.join(", ")}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`dashboard build failed: ${err.message}\n`);
  process.exit(1);
});
