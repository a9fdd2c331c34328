/**
 * The package entry point, `import { createBroker } from "wasmq"`: embed the
 * broker in a program the way aedes users embed aedes — an options object in
 * (the keys of the JSON config file), a running broker out, `close()` to stop.
 *
 *   const broker = await createBroker({ port: 1883, persistence: "memory", plugins: [...] });
 *   broker.port("tcp");
 *   await broker.close();
 *
 * Subpaths: "wasmq/persistence" (the LMDB persistence for aedes on its own),
 * "wasmq/host" (the plugin host: chain, harness types), "wasmq/native" (the
 * native plugin SDK).
 */
import type { Logger } from "pino";
import { ConfigError, loadConfig, parseRawConfig, resolveConfig, type BrokerConfig, type RawConfig } from "./config.js";
import { startBroker, type RunningBroker } from "./server.js";

export { ConfigError, DEFAULT_CONFIG_FILE, isLoopbackHost, loadConfig, parseRawConfig, readConfigFile, resolveConfig } from "./config.js";
export type { AdminTls, BrokerConfig, ConfigOverrides, PluginConfig, RawConfig } from "./config.js";
export { StartError, VERSION, createLogger, startBroker } from "./server.js";
export type { RunningBroker } from "./server.js";
export { openPersistence } from "./persistence/index.js";
export type { OpenedPersistence, PersistenceExpiry } from "./persistence/index.js";
export { ListenError } from "./net/listeners.js";
export { PluginError } from "../host/index.js";

export interface CreateBrokerOptions extends RawConfig {
  /**
   * Read the configuration from this JSON file instead (relative paths in it
   * resolve against its folder). The other configuration keys must then be absent.
   */
  configFile?: string;
  /** A pino logger to log through; default: JSON lines on stdout at `log.level`. */
  logger?: Logger;
}

/**
 * Validate the options like a config file (an unknown key or a bad value is a
 * ConfigError naming it; relative paths resolve against the working directory),
 * then start the broker: persistence, plugins, listeners. Defaults are the
 * config file's: MQTT on 127.0.0.1:1883, WebSocket on 8083 (`ws: false` turns
 * it off), LMDB in ./data (`persistence: "memory"` for none).
 */
export async function createBroker(options: CreateBrokerOptions = {}): Promise<RunningBroker> {
  const { configFile, logger, ...raw } = options;
  let config: BrokerConfig;
  if (configFile !== undefined) {
    const mixed = Object.keys(raw);
    if (mixed.length > 0) throw new ConfigError(`createBroker: give either configFile or configuration keys, not both (got ${mixed.map((k) => `"${k}"`).join(", ")} with configFile)`);
    config = loadConfig(configFile);
  } else {
    config = resolveConfig(parseRawConfig(raw, "createBroker options"), null);
  }
  return startBroker(config, logger ? { logger } : {});
}
