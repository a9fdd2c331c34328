/**
 * mqtt-packet (inside aedes, and the broker's own framing) calls its `debug`
 * loggers a dozen times per packet it parses. The `debug` package checks
 * whether a logger is enabled only inside the call, after collecting the
 * call's arguments into a fresh array: in the bench's QoS 1 traffic that was
 * 14% of everything the broker allocated (a sampling allocation profile,
 * bench/README.md "64 B throughput, latency tail, v5 path"), for output
 * nobody asked for.
 *
 * `debug` decides what it prints from the DEBUG environment variable when it
 * is loaded. When DEBUG is not set, nothing would ever print, so the broker
 * registers a `debug` whose loggers are one shared empty function, before
 * aedes and mqtt-packet load it. With DEBUG set (DEBUG=mqtt-packet:* ...), the
 * real package loads and prints as usual. Imported first by server.ts.
 */
import { createRequire } from "node:module";

if (!process.env.DEBUG) {
  const require = createRequire(import.meta.url);
  let path: string | null = null;
  try {
    path = require.resolve("debug");
  } catch {
    // not installed where aedes would find it: nothing to replace
  }
  if (path && !require.cache[path]) {
    const quiet = Object.assign(function quietDebug(): void {}, {
      enabled: false,
      namespace: "",
      useColors: false,
      color: 0,
      diff: 0,
      log(): void {},
      destroy(): boolean {
        return false;
      },
      extend: (): unknown => quiet,
    });
    const createDebug = Object.assign((_namespace: string) => quiet, {
      debug: undefined as unknown,
      default: undefined as unknown,
      enable(): void {},
      disable: (): string => "",
      enabled: (): boolean => false,
      coerce: (v: unknown): unknown => v,
      humanize: (ms: number): string => `${ms}ms`,
      selectColor: (): number => 0,
      load: (): string => "",
      save(): void {},
      log(): void {},
      formatArgs(): void {},
      useColors: (): boolean => false,
      names: [] as RegExp[],
      skips: [] as RegExp[],
      formatters: {} as Record<string, unknown>,
      inspectOpts: {} as Record<string, unknown>,
    });
    createDebug.debug = createDebug;
    createDebug.default = createDebug;
    const module = new (require("node:module") as { Module: new (id: string) => NodeJS.Module }).Module(path);
    module.filename = path;
    module.loaded = true;
    module.exports = createDebug;
    require.cache[path] = module;
  }
}
