import { pathToFileURL } from "node:url";
import { ABI_VERSION, HOOK_EXPORTS, HOOKS, INIT_EXPORT, type HookName } from "./abi.js";
import { HostCalls } from "./host-calls.js";
import { CallState, PluginError, type PluginFactory, type PluginInstance, type PluginServices } from "./instance.js";
import type { HookMessage } from "./message.js";
import { setActiveCall, type ActiveCall } from "./native/context.js";
import { Config, Message } from "./native/index.js";
import { captureLogs } from "./capture-logs.js";

type NativeModule = Record<string, unknown>;

let generation = 0;

/**
 * A native TypeScript/JavaScript plugin: a module exporting the same functions a
 * Wasm plugin exports. Each instance is a fresh copy of the module (a distinct
 * import URL), so module-level state starts over after a failure or a reload,
 * exactly as a re-instantiated Wasm module does. Native plugins are not
 * sandboxed: no fuel, no memory cap; exceptions still get the failure policy,
 * and their host calls get the same per-call caps and output checks.
 */
export class NativePluginFactory implements PluginFactory {
  readonly kind = "native" as const;

  private constructor(
    private readonly url: string,
    private readonly services: PluginServices,
    readonly hooks: ReadonlySet<HookName>,
  ) {}

  static async load(file: string, services: PluginServices): Promise<NativePluginFactory> {
    const url = pathToFileURL(file).href;
    const mod = await importFresh(url, services.name);
    const hooks = new Set<HookName>();
    for (const hook of HOOKS) {
      const fn = mod[HOOK_EXPORTS[hook]];
      if (fn === undefined) continue;
      if (typeof fn !== "function") throw new PluginError(services.name, `refused: export "${HOOK_EXPORTS[hook]}" must be a function`);
      hooks.add(hook);
    }
    if (hooks.size === 0) {
      throw new PluginError(services.name, `refused: ${file} exports none of the hooks ${Object.values(HOOK_EXPORTS).join(", ")}`);
    }
    return new NativePluginFactory(url, services, hooks);
  }

  async instantiate(config: Uint8Array, state: () => CallState): Promise<PluginInstance> {
    const mod = await importFresh(this.url, this.services.name);
    return new NativePluginInstance(mod, this.services, this.hooks, config, state);
  }
}

async function importFresh(url: string, name: string): Promise<NativeModule> {
  try {
    return (await import(`${url}?wasmq=${++generation}`)) as NativeModule;
  } catch (err) {
    throw new PluginError(name, `refused: cannot load ${url}: ${(err as Error).message}`);
  }
}

type NativeHook = (msg: Message) => number;

class NativePluginInstance implements PluginInstance {
  readonly kind = "native" as const;
  /** Native plugins compile against the current SDK. */
  readonly abiVersion = ABI_VERSION;
  readonly lastFuelUsed = -1;
  private readonly fns: Partial<Record<HookName, NativeHook>> = {};
  private readonly message = new Message();
  private readonly call_: ActiveCall;
  readonly authMethods: readonly string[];
  readonly idleHooks: ReadonlySet<HookName>;

  constructor(
    private readonly mod: NativeModule,
    services: PluginServices,
    readonly hooks: ReadonlySet<HookName>,
    config: Uint8Array,
    state: () => CallState,
  ) {
    for (const hook of hooks) this.fns[hook] = mod[HOOK_EXPORTS[hook]] as NativeHook;
    const calls = new HostCalls(services.name, services.hostLimits, services.output);
    this.call_ = { services, state: state(), calls };
    this.authMethods = calls.authMethods;
    this.idleHooks = calls.idleHooks;
    calls.initializing = true;
    const init = mod[INIT_EXPORT];
    if (typeof init === "function") {
      setActiveCall(this.call_);
      const said = captureLogs(services);
      let accepted: unknown;
      try {
        accepted = init(new Config(config));
      } catch (err) {
        throw new PluginError(services.name, `init failed: ${(err as Error).message}${said.text()}`);
      } finally {
        said.stop();
        setActiveCall(null);
        calls.initializing = false;
      }
      if (accepted === false) throw new PluginError(services.name, `init refused its config${said.text()}`);
    }
    calls.initializing = false;
  }

  call(hook: Exclude<HookName, "tick">, msg: HookMessage, state: CallState): number {
    this.call_.state = state;
    setActiveCall(this.call_);
    try {
      return this.fns[hook]!(this.message.bind(msg, state)) | 0;
    } finally {
      setActiveCall(null);
    }
  }

  tick(nowMs: number, state: CallState): void {
    this.call_.state = state;
    setActiveCall(this.call_);
    try {
      (this.mod.onTick as (now: number) => void)(nowMs);
    } finally {
      setActiveCall(null);
    }
  }

  dispose(): void {}
}
