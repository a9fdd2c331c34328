// No node: imports: this module also runs in the dashboard's playground (Node's parts come in a WasmHostEnv).
import { instantiateSync } from "@assemblyscript/loader";
import {
  ABI_VERSION,
  ENV_IMPORTS,
  HEADER_SIZE,
  HOOK_EXPORTS,
  HOOKS,
  HOST_IMPORTS,
  INIT_EXPORT,
  SCRUB_EXPORT,
  REQUIRED_EXPORTS,
  SUPPORTED_ABI_VERSIONS,
  type HookName,
} from "./abi.js";
import { HEADER_SIZE_V2, v5Imports } from "./v5-record.js";
import { authImports } from "./auth-calls.js";
import { idleImports } from "./idle-calls.js";
import { coreImports } from "./core-imports.js";
import { captureLogs } from "./capture-logs.js";
import { fuelTank } from "./fuel-tank.js";
import { FUEL_BUDGET_GLOBAL, FUEL_GLOBAL, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME, FuelExhaustedError } from "./fuel-names.js";
// Trap classification lives in traps.ts; re-exported here for existing importers.
export { classifyTrap, describeTrap, PluginAbortError, PluginMemoryError, type TrapKind } from "./traps.js";
export { captureLogs } from "./capture-logs.js";
import { CallState, PluginError, type PluginFactory, type PluginInstance, type PluginServices } from "./instance.js";
import { HostCalls } from "./host-calls.js";
import { emptyMessage, type HookMessage } from "./message.js";
import { describeTrap, PluginAbortError, PluginMemoryError } from "./traps.js";
import { inspectModule, WasmFormatError } from "./wasm-binary.js";
import type { HostCrypto, WasmHostEnv } from "./wasm-env.js";
import { DeferredPayload, wantsDeferredPayload } from "./deferred-payload.js";
import { DELIVER_LANE, MAIN_LANE, RecordWriter } from "./record-writer.js";

export interface WasmLimits {
  /** Fuel per call; null disables metering (the bench's `wasm-nofuel`). */
  fuel: number | null;
  /** Cap on the plugin's linear memory, in 64 KiB pages. */
  memoryPages: number;
}

const ALLOWED_IMPORTS = new Set<string>([
  ...ENV_IMPORTS.map((n) => `env.${n}`),
  ...HOST_IMPORTS.map((n) => `wasmq.${n}`),
]);

/**
 * A validated, metered and compiled plugin build. Compiling is the slow part,
 * so it is done once; a trapped instance is replaced by a new one from here.
 */
export class WasmPluginFactory implements PluginFactory {
  readonly kind = "wasm" as const;

  private constructor(
    private readonly services: PluginServices,
    private readonly module: WebAssembly.Module,
    readonly hooks: ReadonlySet<HookName>,
    private readonly minPages: number,
    private readonly limits: WasmLimits,
    private readonly crypto: HostCrypto,
  ) {}

  static async compile(bytes: Uint8Array, services: PluginServices, limits: WasmLimits, env: WasmHostEnv): Promise<WasmPluginFactory> {
    const refuse = (why: string): never => {
      throw new PluginError(services.name, `refused: ${why}`);
    };
    let shape;
    try {
      shape = inspectModule(bytes);
    } catch (err) {
      if (err instanceof WasmFormatError) refuse(err.message);
      throw err;
    }
    if (shape.definesMemory) refuse("it defines its own memory; plugins must import it (build with --importMemory)");
    let minPages = 0;
    let importsMemory = false;
    for (const imp of shape.imports) {
      const key = `${imp.module}.${imp.name}`;
      if (!ALLOWED_IMPORTS.has(key)) refuse(`it imports "${key}", which is not part of the wasmq ABI v${ABI_VERSION}`);
      if (key === "env.memory") {
        if (imp.kind !== "memory") refuse(`"env.memory" must be a memory import`);
        importsMemory = true;
        minPages = imp.minPages ?? 0;
      } else if (imp.kind !== "function") {
        refuse(`import "${key}" must be a function`);
      }
    }
    if (!importsMemory) refuse("it does not import its memory as env.memory (build with --importMemory)");
    if (minPages > limits.memoryPages) {
      refuse(`it needs ${minPages} memory pages at start but its limit (limits.memoryPages) is ${limits.memoryPages}`);
    }
    let binary = bytes;
    if (limits.fuel !== null) {
      try {
        binary = await env.instrument(bytes);
      } catch (err) {
        refuse(`fuel metering failed: ${(err as Error).message}`);
      }
    }
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(binary as BufferSource);
    } catch (err) {
      return refuse(`it does not compile: ${(err as Error).message}`);
    }
    const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
    for (const name of REQUIRED_EXPORTS) {
      if (exports.get(name) !== "function") refuse(`it does not export "${name}" (add \`export * from "../sdk/exports"\`)`);
    }
    const hooks = new Set<HookName>();
    for (const hook of HOOKS) {
      const kind = exports.get(HOOK_EXPORTS[hook]);
      if (kind === undefined) continue;
      if (kind !== "function") refuse(`export "${HOOK_EXPORTS[hook]}" must be a function`);
      hooks.add(hook);
    }
    if (hooks.size === 0) refuse(`it exports none of the hooks ${Object.values(HOOK_EXPORTS).join(", ")}`);
    return new WasmPluginFactory(services, module, hooks, Math.max(minPages, 1), limits, env.crypto);
  }

  instantiate(config: Uint8Array, state: () => CallState): PluginInstance {
    return new WasmPluginInstance(this.services, this.module, this.hooks, this.minPages, this.limits, config, state, this.crypto);
  }
}

type HookFn = (ptr: number) => number;

class WasmPluginInstance implements PluginInstance {
  readonly kind = "wasm" as const;
  /** From the plugin's wasmq_abi_version(): v1 records stay byte for byte what they were. */
  readonly abiVersion: number = 0;
  private headerSize = HEADER_SIZE;
  private readonly memory: WebAssembly.Memory;
  private readonly exports: Record<string, unknown>;
  private readonly fns: Partial<Record<HookName, HookFn>> = {};
  private readonly reserve: (size: number) => number;
  private readonly fuel: WebAssembly.Global | null;
  private readonly budget: number;
  private hooked = false;
  /** Every host import charges and checks through this (host-calls.ts). */
  private readonly calls: HostCalls;
  private buf: Buffer;
  private u32: Uint32Array;
  private readonly records: RecordWriter;
  private disposed = false;
  /** The message of the call in progress, for imports that read it on demand (client_cert). */
  private current: HookMessage | null = null;
  /** Set when the module fetches large payloads itself (deferred-payload.ts). */
  private deferred: DeferredPayload | null = null;

  constructor(
    private readonly services: PluginServices,
    module: WebAssembly.Module,
    readonly hooks: ReadonlySet<HookName>,
    minPages: number,
    private readonly limits: WasmLimits,
    config: Uint8Array,
    private readonly state: () => CallState,
    private readonly crypto: HostCrypto,
  ) {
    this.memory = new WebAssembly.Memory({ initial: minPages, maximum: limits.memoryPages });
    this.buf = Buffer.from(this.memory.buffer);
    this.u32 = new Uint32Array(this.memory.buffer);
    const name = services.name;
    this.calls = new HostCalls(name, services.hostLimits, services.output);
    this.calls.initializing = true;
    let instance: WebAssembly.Instance;
    try {
      instance = instantiateSync<Record<string, unknown>>(module, this.imports()).instance;
    } catch (err) {
      throw new PluginError(name, `failed to start: ${describeTrap(err)}`);
    }
    this.exports = instance.exports as Record<string, unknown>;
    const version = (this.exports.wasmq_abi_version as () => number)();
    if (!SUPPORTED_ABI_VERSIONS.includes(version)) {
      throw new PluginError(name, `refused: it was built for ABI v${version}, this host speaks ABI v${SUPPORTED_ABI_VERSIONS.join(" and v")} (rebuild it against the current SDK, ABI v${ABI_VERSION})`);
    }
    this.abiVersion = version;
    if (version >= 2) this.headerSize = HEADER_SIZE_V2;
    this.reserve = this.exports.wasmq_reserve as (size: number) => number;
    this.records = new RecordWriter(name, this.headerSize, this.reserve);
    try {
      if (wantsDeferredPayload(this.exports, version)) this.deferred = new DeferredPayload();
    } catch (err) {
      throw new PluginError(name, `refused: wasmq_features() failed: ${describeTrap(err)}`);
    }
    for (const hook of hooks) this.fns[hook] = this.exports[HOOK_EXPORTS[hook]] as HookFn;
    this.fuel = limits.fuel === null ? null : (this.exports[FUEL_GLOBAL] as WebAssembly.Global);
    this.budget = limits.fuel ?? 0;
    this.calls.fuel = this.fuel && fuelTank(this.exports, this.fuel);
    // Every call from the host starts with this budget (see host/fuel.ts).
    if (this.fuel) (this.exports[FUEL_BUDGET_GLOBAL] as WebAssembly.Global).value = this.budget;
    const init = this.exports[INIT_EXPORT];
    if (typeof init === "function") {
      const msg = emptyMessage();
      msg.payload = config;
      // init is the control plane: reading a large config costs far more than a message.
      const budget = this.exports[FUEL_BUDGET_GLOBAL] as WebAssembly.Global | undefined;
      if (budget) budget.value = INIT_FUEL;
      const said = captureLogs(services);
      let accepted: number;
      try {
        accepted = this.invoke(init as HookFn, msg);
      } catch (err) {
        throw new PluginError(name, `init failed: ${describeTrap(err)}${said.text()}`);
      } finally {
        said.stop();
        if (budget) budget.value = this.budget;
      }
      this.calls.initializing = false;
      if (!accepted) throw new PluginError(name, `init refused its config${said.text()}`);
    }
    this.calls.initializing = false;
  }

  call(hook: Exclude<HookName, "tick">, msg: HookMessage): number {
    this.hooked = true;
    if (hook !== "connect" && hook !== "auth") return this.invoke(this.fns[hook]!, msg, true, hook === "deliver" ? DELIVER_LANE : MAIN_LANE);
    let returned = false;
    try {
      const result = this.invoke(this.fns[hook]!, msg, true, MAIN_LANE);
      returned = true;
      return result;
    } finally {
      this.scrubSecrets(hook === "auth", returned);
    }
  }

  /**
   * The password (and an AUTH step's authentication data, in the payload field)
   * stay in the input region until a later record overwrites them, and a
   * heap or core dump would show them: zero them once the hook has read them,
   * and forget the cached prefix so the next record writes it afresh. A module
   * built with the current SDK also zeroes the copies msg.password handed out
   * (wasmq_scrub); older modules have no such export and keep theirs.
   */
  private scrubSecrets(authData: boolean, returned: boolean): void {
    this.refreshViews();
    this.records.scrubSecrets(this.buf, authData);
    const scrub = this.exports[SCRUB_EXPORT];
    if (!returned || typeof scrub !== "function") return;
    // Keep the hook's fuel reading (lastFuelUsed) rather than the scrub's.
    const left = this.fuel?.value as number | undefined;
    try {
      (scrub as () => void)();
    } catch (err) {
      throw this.explain(err);
    }
    if (this.fuel && left !== undefined) this.fuel.value = left;
  }

  tick(nowMs: number): void {
    this.hooked = true;
    try {
      (this.fns.tick as unknown as (now: number) => void)(nowMs);
    } catch (err) {
      throw this.explain(err);
    }
  }

  get authMethods(): readonly string[] {
    return this.calls.authMethods;
  }

  get idleHooks(): ReadonlySet<HookName> {
    return this.calls.idleHooks;
  }

  /** Fuel the last call used; reads the global, so only on demand (metrics). */
  get lastFuelUsed(): number {
    // Before its first hook call the counter still holds what init left of INIT_FUEL.
    return this.fuel && this.hooked ? this.budget - (this.fuel.value as number) : -1;
  }

  dispose(): void {
    this.disposed = true;
  }

  /** `deferPayload`: hook calls may leave a large payload for the plugin to fetch; init (the config) never does. */
  private invoke(fn: HookFn, msg: HookMessage, deferPayload = false, lane = MAIN_LANE): number {
    const ptr = this.writeRecord(msg, deferPayload, lane);
    this.current = msg;
    try {
      return fn(ptr);
    } catch (err) {
      throw this.explain(err);
    } finally {
      this.current = null;
      this.deferred?.clear();
    }
  }

  /**
   * AssemblyScript's allocator executes `unreachable` when memory.grow fails. It
   * asks to double the memory first, so a failed grow means the plugin already
   * held more than half its cap: name such traps as the memory limit.
   */
  private explain(err: unknown): unknown {
    const max = this.limits.memoryPages * 65536;
    if (err instanceof WebAssembly.RuntimeError && /unreachable/.test(err.message) && this.memory.buffer.byteLength * 2 > max) {
      return new PluginMemoryError(`plugin "${this.services.name}" reached its memory limit of ${this.limits.memoryPages} pages`);
    }
    return err;
  }

  /** Growing a memory detaches its old buffer (byteLength 0): re-create the views then. */
  private refreshViews(): void {
    if (this.u32.byteLength === 0) {
      this.buf = Buffer.from(this.memory.buffer);
      this.u32 = new Uint32Array(this.memory.buffer);
    }
  }

  /** Write the record (record-writer.ts); `lane` keeps the deliver hook's record apart from the publish hook's. */
  private writeRecord(msg: HookMessage, deferPayload: boolean, lane: number): number {
    const ptr = this.records.place(msg, lane);
    this.refreshViews();
    return this.records.write(this.buf, this.u32, ptr, msg, deferPayload ? this.deferred : null);
  }

  private bytes(ptr: number, len: number): Buffer {
    this.refreshViews();
    if (ptr < 0 || len < 0 || ptr + len > this.buf.length) {
      throw new PluginAbortError(`host import got an out-of-range buffer (${ptr}, ${len})`);
    }
    return this.buf.subarray(ptr, ptr + len);
  }

  private imports(): WebAssembly.Imports {
    const { services, state, crypto } = this;
    const self = this;
    // Each import charges and checks through `calls` before it copies, allocates or queues anything.
    const calls = (): HostCalls => self.calls;
    const wasmq: Record<string, (...args: number[]) => number | void> = {
      ...coreImports({
        services,
        crypto,
        calls,
        state,
        bytes: (p, l) => self.bytes(p, l),
        current: () => self.current,
        fetchPayload: () => {
          const deferred = self.deferred;
          calls().charge("payload_fetch", deferred?.size ?? 0);
          if (!deferred) return 0;
          self.refreshViews();
          return deferred.fetch(self.buf);
        },
      }),
      ...v5Imports({ plugin: services.name, rules: services.output, calls, state, bytes: (p, l) => self.bytes(p, l) }),
      ...authImports({ plugin: services.name, services, calls, state, bytes: (p, l) => self.bytes(p, l) }),
      ...idleImports({ plugin: services.name, calls }),
      [FUEL_IMPORT_NAME]() {
        throw new FuelExhaustedError(`plugin "${services.name}" ran out of fuel`);
      },
    };
    const env = {
      memory: this.memory,
      abort(msgPtr: number, filePtr: number, line: number, column: number) {
        throw new PluginAbortError(`abort: ${self.asString(msgPtr)} at ${self.asString(filePtr)}:${line}:${column}`);
      },
      trace(msgPtr: number, n: number, ...args: number[]) {
        const bytes = calls().log(state(), self.asStringBytes(msgPtr));
        calls().charge("trace", bytes);
        services.log(1, `trace: ${self.asString(msgPtr, bytes)} ${args.slice(0, n).join(", ")}`);
      },
      seed() {
        return Date.now() * Math.random();
      },
    };
    return FUEL_IMPORT_MODULE === "wasmq" ? { env, wasmq } : { env, wasmq, [FUEL_IMPORT_MODULE]: { [FUEL_IMPORT_NAME]: wasmq[FUEL_IMPORT_NAME]! } };
  }

  /** Byte length of an AssemblyScript string (stored just before it), 0 when the pointer is bad. */
  private asStringBytes(ptr: number): number {
    this.refreshViews();
    if (ptr < 4 || ptr > this.buf.length) return 0;
    return this.buf.readUInt32LE(ptr - 4);
  }

  /** Read an AssemblyScript string (UTF-16), at most maxBytes of it; control plane only. */
  private asString(ptr: number, maxBytes = Infinity): string {
    if (!ptr) return "";
    this.refreshViews();
    if (ptr < 4 || ptr > this.buf.length) return `<bad string pointer ${ptr}>`;
    const len = this.buf.readUInt32LE(ptr - 4);
    if (ptr + len > this.buf.length) return `<bad string pointer ${ptr}>`;
    const n = Math.min(len, maxBytes);
    return this.buf.toString("utf16le", ptr, ptr + n - (n % 2));
  }
}

/** Fuel for init: the most an i32 budget allows (seconds of work, still not forever). */
const INIT_FUEL = 0x7fffffff;
