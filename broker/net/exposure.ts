/**
 * Secure defaults, as Mosquitto 2: without authentication (no enabled plugin
 * with a connect hook) the broker serves this machine only. A public address
 * needs an auth plugin or an explicit `allowAnonymous: true` — at start, and
 * for as long as the broker runs: disabling the last authentication plugin,
 * or reloading it as a build without `onConnect`, is refused.
 */
import type { Logger } from "pino";
import type { HookName, PluginChain, PluginSlot } from "../../host/index.js";
import type { BrokerConfig } from "../config.js";
import { isLoopbackHost } from "./loopback.js";

/** The MQTT listener addresses other machines could reach. */
function publicListeners(config: BrokerConfig): string[] {
  // A TLS listener that requires a client certificate authenticates every client itself.
  const tlsHost = config.tls && config.tls.clientCert !== "require" ? config.tls.host : undefined;
  const hosts = [config.host, config.ws?.host, tlsHost].filter((h): h is string => !!h && !isLoopbackHost(h));
  return [...new Set(hosts)];
}

/** At start: why the broker must not start (a public listener without authentication), or null after saying what it does. */
export function exposureRefusal(config: BrokerConfig, chain: PluginChain, logger: Logger): string | null {
  const exposed = publicListeners(config);
  if (chain.has("connect")) return null;
  if (!config.allowAnonymous) {
    if (exposed.length) {
      return `refusing to listen on ${exposed.join(", ")} without authentication: add a plugin with a connect hook (e.g. auth) or set "allowAnonymous": true`;
    }
    logger.info("no authentication configured (no plugin with a connect hook): listening on loopback only; add an auth plugin or set allowAnonymous to serve other hosts");
  } else if (exposed.length) {
    logger.warn(`allowAnonymous is set: anyone who can reach ${exposed.join(", ")} can connect without credentials`);
  }
  return null;
}

/**
 * Why `slot` may not end up with `hooksAfter` (empty: disabled), or null. Refused
 * when the broker is public, anonymous access is not allowed, `slot` is the only
 * enabled plugin with a connect hook, and its new state has none.
 */
export function authRemovalRefusal(config: BrokerConfig, chain: PluginChain, slot: PluginSlot, hooksAfter: ReadonlySet<HookName>, action: "disable" | "reload"): string | null {
  const exposed = publicListeners(config);
  if (config.allowAnonymous || !exposed.length || hooksAfter.has("connect") || !slot.has("connect")) return null;
  if (chain.slots.some((s) => s !== slot && s.has("connect"))) return null;
  const what = action === "disable" ? "disabling it" : "this build has no onConnect hook, so loading it";
  return `plugin ${slot.name} is the only authentication and the broker listens on ${exposed.join(", ")}: ${what} would let anyone connect (set allowAnonymous to allow that)`;
}
