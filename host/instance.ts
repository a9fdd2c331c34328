import type { HookName } from "./abi.js";
import type { HostCallLimits } from "./host-calls.js";
import type { KvStore } from "./kv.js";
import type { HookMessage, InjectedMessage } from "./message.js";
import type { OutputRules } from "./output-rules.js";
import type { V5Changes } from "./message-v5.js";

/** What a plugin can reach of the outside world; the host binds it per plugin. */
export interface PluginServices {
  /** The plugin's name: its log label and its key-value namespace. */
  name: string;
  kv: KvStore;
  log(level: number, message: string): void;
  now(): number;
  /** Per-call caps on host calls (the plugin's limits). */
  hostLimits: HostCallLimits;
  /** How the broker validates what the plugin hands back. */
  output: OutputRules;
  /** The random source of random_bytes / crypto.randomBytes (the harness may pin it); default: the platform CSPRNG. */
  random?: (n: number) => Uint8Array;
}

/**
 * Changes a plugin asks for during one call. They are applied to the message
 * only when the call returns normally, so a plugin that traps half-way leaves
 * the message untouched.
 */
export class CallState {
  topic: string | null = null;
  payload: Uint8Array | null = null;
  qos = -1;
  retain = -1;
  ttlSec = -1;
  /** ABI v2: changed MQTT 5 fields (null: none), and the reason string of a refusal. */
  v5: V5Changes | null = null;
  reasonString: string | null = null;
  /** auth hook: the Authentication Data of the answer, and the exchange state to keep (null: unchanged). */
  authData: Uint8Array | null = null;
  authState: Uint8Array | null = null;
  /** auth hook (v2-r4): the identity named with set_auth_identity (null: none). */
  authIdentity: string | null = null;
  readonly extras: InjectedMessage[] = [];
  /** The hook being called and its message (null for tick): what output is validated against. */
  hook: HookName = "tick";
  message: HookMessage | null = null;
  /** Host-call accounting of this call (host-calls.ts). */
  publishBytes = 0;
  logLines = 0;

  reset(): void {
    this.publishBytes = 0;
    this.logLines = 0;
    this.topic = null;
    this.payload = null;
    this.qos = -1;
    this.retain = -1;
    this.ttlSec = -1;
    this.v5 = null;
    this.reasonString = null;
    this.authData = null;
    this.authState = null;
    this.authIdentity = null;
    if (this.extras.length) this.extras.length = 0;
  }

  get modified(): boolean {
    return this.topic !== null || this.payload !== null || this.qos >= 0 || this.retain >= 0;
  }
}

/** A loaded, initialised plugin: Wasm or native. Calls throw when the plugin fails. */
export interface PluginInstance {
  readonly kind: "wasm" | "native";
  /** The plugin ABI version it was built for (native plugins: the current one). */
  readonly abiVersion: number;
  readonly hooks: ReadonlySet<HookName>;
  /** Enhanced-authentication methods declared in init (abi-auth.ts). */
  readonly authMethods: readonly string[];
  /** Hooks declared idle in init (abi-idle.ts): never called for this instance. */
  readonly idleHooks: ReadonlySet<HookName>;
  call(hook: Exclude<HookName, "tick">, msg: HookMessage, state: CallState): number;
  tick(nowMs: number, state: CallState): void;
  /** Fuel the last call used, or -1 when unmetered (may cost a read of Wasm state: not per call). */
  readonly lastFuelUsed: number;
  dispose(): void;
}

/** A source of fresh instances of one plugin build (the cached compiled module). */
export interface PluginFactory {
  readonly kind: "wasm" | "native";
  readonly hooks: ReadonlySet<HookName>;
  /** Instantiate and run init; throws PluginError when init refuses the config. */
  instantiate(config: Uint8Array, state: () => CallState): PluginInstance | Promise<PluginInstance>;
}

export class PluginError extends Error {
  constructor(
    readonly plugin: string,
    message: string,
  ) {
    super(`plugin "${plugin}": ${message}`);
    this.name = "PluginError";
  }
}
