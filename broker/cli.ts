#!/usr/bin/env -S node --min-semi-space-size=16 --initial-old-space-size=128
import { parseArgs } from "node:util";
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig, type ConfigOverrides } from "./config.js";
import type { RunningBroker } from "./server.js";

const HELP = `wasmq — an MQTT broker whose policy runs in sandboxed WebAssembly plugins

Usage:
  wasmq [options]                 start the broker
  wasmq admin COMMAND [options]   control a running broker (plugins, reload, enable, disable, clients, kick);
                                  "wasmq admin --help" lists them
  wasmq plugin COMMAND [options]  plugin tooling: keygen, sign, verify, inspect, new, build;
                                  "wasmq plugin --help" lists them
  wasmq scram credential USER     a SCRAM-SHA-256 user entry for the scram plugin (password on stdin,
                                  SASLprep'd); "wasmq scram --help" explains

Options:
  -c, --config FILE        JSON config file (default: ${DEFAULT_CONFIG_FILE})
      --host HOST          address of the TCP listener (and of WebSocket/TLS unless set) (default 127.0.0.1)
  -p, --port PORT          MQTT over TCP port (default 1883; 0 = any free port)
      --ws-port PORT       MQTT over WebSocket port, path /mqtt (default 8083)
      --data DIR           LMDB data directory (default ./data next to the config file)
      --persistence KIND   lmdb (default) or memory
      --log-level LEVEL    fatal, error, warn, info (default), debug, trace, silent
      --metrics-port PORT  serve Prometheus metrics and the admin API on this port
      --redis URL          cluster mode: share sessions, retained messages and routing with other nodes through Redis
      --node-id ID         this node's id in the cluster (default: config "cluster.id", else derived and kept in the data dir)
  -h, --help               show this help

Signals: SIGINT/SIGTERM stop gracefully; SIGHUP reloads every plugin and the
TLS files (certificate, key, CA bundle, CRL) from disk.
A TLS listener starts when the config has "tls": { "cert", "key", "port" }.`;

function fail(message: string): never {
  process.stderr.write(`wasmq: ${message}\n`);
  process.exit(2);
}

function portOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`--${name}: expected a port number 0-65535, got "${value}"`);
  return n;
}

/** Runs a subcommand whose module throws `Refusal` for a user error: its message goes to stderr, with its exit code. */
async function runTool(label: string, run: (argv: string[]) => Promise<string>, Refusal: abstract new (...args: never[]) => Error & { exitCode: number }, argv: string[]): Promise<void> {
  try {
    process.stdout.write(`${await run(argv)}\n`);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    process.stderr.write(`${label}: ${err.message}\n`);
    process.exit(err.exitCode);
  }
}

// The admin client loads without the broker (aedes, LMDB, the Wasm host): it starts fast.
async function admin(argv: string[]): Promise<void> {
  const { AdminCliError, runAdmin } = await import("./ops/admin-cli.js");
  await runTool("wasmq admin", runAdmin, AdminCliError, argv);
}

// Plugin tooling (keys, signing, inspect, projects) lives in host/tools; it needs no broker.
async function plugin(argv: string[]): Promise<void> {
  const { PluginCliError, runPluginCli } = await import("../host/tools/plugin-cli.js");
  await runTool("wasmq plugin", runPluginCli, PluginCliError, argv);
}

// The scram plugin's credential tool (plugins-as/scram/credential-cli.ts); it needs no broker.
async function scram(argv: string[]): Promise<void> {
  const { ScramCliError, runScramCli } = await import("../plugins-as/scram/credential-cli.js");
  await runTool("wasmq scram", runScramCli, ScramCliError, argv);
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "admin") return admin(argv.slice(1));
  if (argv[0] === "plugin") return plugin(argv.slice(1));
  if (argv[0] === "scram") return scram(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        config: { type: "string", short: "c" },
        host: { type: "string" },
        port: { type: "string", short: "p" },
        "ws-port": { type: "string" },
        data: { type: "string" },
        persistence: { type: "string" },
        "log-level": { type: "string" },
        "metrics-port": { type: "string" },
        redis: { type: "string" },
        "node-id": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    fail(`${(err as Error).message}\nRun "wasmq --help" for the options.`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (v.persistence !== undefined && v.persistence !== "lmdb" && v.persistence !== "memory") {
    fail(`--persistence: expected "lmdb" or "memory", got "${v.persistence}"`);
  }
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (v["log-level"] !== undefined && !levels.includes(v["log-level"])) fail(`--log-level: expected one of ${levels.join(", ")}`);
  const overrides: ConfigOverrides = {
    ...(v.host !== undefined ? { host: v.host } : {}),
    ...(v.port !== undefined ? { port: portOption("port", v.port)! } : {}),
    ...(v["ws-port"] !== undefined ? { wsPort: portOption("ws-port", v["ws-port"])! } : {}),
    ...(v.data !== undefined ? { data: v.data } : {}),
    ...(v.persistence !== undefined ? { persistence: v.persistence as "lmdb" | "memory" } : {}),
    ...(v["log-level"] !== undefined ? { logLevel: v["log-level"] as ConfigOverrides["logLevel"] } : {}),
    ...(v["metrics-port"] !== undefined ? { metricsPort: portOption("metrics-port", v["metrics-port"])! } : {}),
    ...(v.redis !== undefined ? { redis: v.redis } : {}),
    ...(v["node-id"] !== undefined ? { nodeId: v["node-id"] } : {}),
  };

  let broker: RunningBroker;
  try {
    const config = loadConfig(v.config ?? DEFAULT_CONFIG_FILE, overrides);
    const { startBroker } = await import("./server.js");
    broker = await startBroker(config);
  } catch (err) {
    if (err instanceof ConfigError || (err instanceof Error && ["StartError", "ListenError", "PersistenceError", "PluginError", "ClusterError"].includes(err.name))) {
      fail((err as Error).message);
    }
    throw err;
  }

  const log = broker.logger;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal} received, shutting down`);
    const force = setTimeout(() => {
      log.error("shutdown took longer than 10 s, exiting");
      process.exit(1);
    }, 10_000);
    force.unref();
    broker.close().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err: err.message }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGHUP", () => {
    log.info("SIGHUP received, reloading plugins");
    void broker.chain.reload();
    try {
      broker.reloadTls();
    } catch (err) {
      log.error((err as Error).message);
    }
  });
  log.info({ plugins: broker.chain.slots.map((s) => s.name), persistence: broker.persistence.mode, data: broker.config.data }, "wasmq ready");
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`wasmq: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
