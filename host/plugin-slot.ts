import { readFile } from "node:fs/promises";
import { ReturnCode, Verdict, verdictKind, type HookName } from "./abi.js";
import { CircuitBreaker, type BreakerOptions, type BreakerState } from "./breaker.js";
import { checkFinalMessage, DEFAULT_HOST_CALL_LIMITS, type HostCallLimits } from "./host-calls.js";
import { CallState, PluginError, type PluginFactory, type PluginInstance, type PluginServices } from "./instance.js";
import type { KvStore } from "./kv.js";
import type { HookMessage, InjectedMessage } from "./message.js";
import { NativePluginFactory } from "./native-plugin.js";
import { DEFAULT_OUTPUT_RULES, type OutputRules } from "./output-rules.js";
import { classifyTrap, describeTrap, WasmPluginFactory, type TrapKind } from "./wasm-plugin.js";

export type FailurePolicy = "fail-open" | "fail-closed";

export interface PluginSpec {
  name: string;
  /** Path of a `.wasm` build, or of a native module; exactly one. */
  wasm?: string;
  native?: string;
  config?: Record<string, unknown>;
  onError?: FailurePolicy;
  /** fuel and memoryPages: Wasm only; the per-call host-call caps apply to native plugins too. */
  limits?: { fuel?: number | null; memoryPages?: number } & Partial<HostCallLimits>;
  breaker?: Partial<BreakerOptions>;
  enabled?: boolean;
}

export interface SlotListener {
  trap(slot: PluginSlot, hook: HookName, kind: TrapKind, error: unknown): void;
  breaker(slot: PluginSlot, state: BreakerState): void;
  log(slot: PluginSlot, level: number, message: string): void;
}

export interface SlotStats {
  calls: Record<HookName, number>;
  verdicts: { continue: number; drop: number; deny: number; modified: number };
  traps: Partial<Record<TrapKind, number>>;
  /** Calls answered by the failure policy (trap, breaker open, instance restarting). */
  failures: number;
  reloads: number;
  reloadFailures: number;
  restarts: number;
  fuelUsedLast: number;
}

const DEFAULT_FUEL = 100_000_000;
/** Fuel is an i32 counter inside the module. */
const MAX_FUEL = 0x7fffffff;
const DEFAULT_PAGES = 256;

function zeroCalls(): Record<HookName, number> {
  return { connect: 0, subscribe: 0, publish: 0, deliver: 0, persist: 0, tick: 0 };
}

/**
 * One plugin of the chain: its current instance, the cached build it came from,
 * its failure policy, circuit breaker and statistics. Every call into the plugin
 * goes through `run`, which is where isolation happens: any throw from the plugin
 * discards the instance, answers this message by the failure policy, and starts
 * a fresh instance from the cached build.
 */
export class PluginSlot {
  readonly name: string;
  readonly source: string;
  readonly kind: "wasm" | "native";
  readonly onError: FailurePolicy;
  enabled: boolean;
  readonly stats: SlotStats = {
    calls: zeroCalls(),
    verdicts: { continue: 0, drop: 0, deny: 0, modified: 0 },
    traps: {},
    failures: 0,
    reloads: 0,
    reloadFailures: 0,
    restarts: 0,
    // Read from the instance on demand: reading a Wasm global costs more than a small hook.
    fuelUsedLast: -1,
  };
  /** Last load or reload error, for the admin API. */
  lastError: string | null = null;
  private factory: PluginFactory | null = null;
  private instance: PluginInstance | null = null;
  private readonly breaker: CircuitBreaker;
  private readonly config: Uint8Array;
  private readonly services: PluginServices;
  private state = new CallState();
  private readonly stateRef = (): CallState => this.state;
  private restarting: Promise<void> | null = null;
  private reloading: Promise<boolean> | null = null;

  constructor(
    private readonly spec: PluginSpec,
    kv: KvStore,
    private readonly listener: SlotListener,
    private readonly meterFuel = true,
    clock: () => number = Date.now,
    output: OutputRules = DEFAULT_OUTPUT_RULES,
  ) {
    if ((spec.wasm === undefined) === (spec.native === undefined)) {
      throw new PluginError(spec.name, "give exactly one of wasm or native");
    }
    this.name = spec.name;
    this.source = (spec.wasm ?? spec.native)!;
    this.kind = spec.wasm !== undefined ? "wasm" : "native";
    this.onError = spec.onError ?? "fail-closed";
    this.enabled = spec.enabled ?? true;
    this.config = Buffer.from(JSON.stringify(spec.config ?? {}), "utf8");
    this.breaker = new CircuitBreaker(spec.breaker);
    Object.defineProperty(this.stats, "fuelUsedLast", { enumerable: true, get: () => this.instance?.lastFuelUsed ?? -1 });
    this.services = {
      name: spec.name,
      kv,
      log: (level, message) => listener.log(this, level, message),
      now: clock,
      hostLimits: hostCallLimits(spec),
      output,
    };
  }

  get hooks(): ReadonlySet<HookName> {
    return this.factory?.hooks ?? new Set();
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  get ready(): boolean {
    return this.instance !== null;
  }

  has(hook: HookName): boolean {
    return this.enabled && this.factory !== null && this.factory.hooks.has(hook);
  }

  /** Load the build and start an instance. Throws PluginError naming the reason. */
  async load(): Promise<void> {
    const factory = await this.build();
    this.instance = await factory.instantiate(this.config, this.stateRef);
    this.factory = factory;
  }

  private async build(): Promise<PluginFactory> {
    if (this.kind === "native") return NativePluginFactory.load(this.source, this.services);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.source);
    } catch (err) {
      throw new PluginError(this.name, `refused: cannot read ${this.source}: ${(err as Error).message}`);
    }
    const limits = this.spec.limits ?? {};
    if (limits.fuel != null && !(Number.isInteger(limits.fuel) && limits.fuel > 0 && limits.fuel <= MAX_FUEL)) {
      throw new PluginError(this.name, `refused: limits.fuel must be an integer from 1 to ${MAX_FUEL}, got ${limits.fuel}`);
    }
    return WasmPluginFactory.compile(bytes, this.services, {
      fuel: this.meterFuel ? (limits.fuel === undefined ? DEFAULT_FUEL : limits.fuel) : null,
      memoryPages: limits.memoryPages ?? DEFAULT_PAGES,
    });
  }

  /**
   * Replace the running build with the file's current content. The new build is
   * compiled and its init run before the swap; if either fails the old instance
   * keeps serving and the reason is returned.
   */
  reload(): Promise<boolean> {
    // Coalesce bursts (editors write a file in several steps; SIGHUP during a watch event).
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      try {
        const factory = await this.build();
        const instance = await factory.instantiate(this.config, this.stateRef);
        const old = this.instance;
        this.factory = factory;
        this.instance = instance;
        this.breaker.reset();
        old?.dispose();
        this.stats.reloads++;
        this.lastError = null;
        this.listener.log(this, 2, `reloaded from ${this.source}`);
        return true;
      } catch (err) {
        this.stats.reloadFailures++;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.listener.log(this, 4, `reload refused, the previous build keeps running: ${this.lastError}`);
        return false;
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  /** The verdict this plugin's failure policy gives a message it could not judge. */
  failureVerdict(hook: HookName): number {
    if (this.onError === "fail-open") return Verdict.Continue;
    switch (hook) {
      case "connect":
        return Verdict.Deny | (ReturnCode.ServerUnavailable << 8);
      case "subscribe":
        return Verdict.Deny;
      default:
        return Verdict.Drop;
    }
  }

  /**
   * Run one hook. Returns the verdict; on Continue, the plugin's changes have
   * been applied to `msg` and its extra publishes appended to `extras`.
   */
  run(hook: Exclude<HookName, "tick">, msg: HookMessage, out: { ttlSec: number; modified: boolean; extras: InjectedMessage[] }): number {
    this.stats.calls[hook]++;
    const instance = this.available();
    if (!instance) {
      this.stats.failures++;
      return this.failureVerdict(hook);
    }
    const state = this.state;
    state.reset();
    state.hook = hook;
    state.message = msg;
    let verdict: number;
    try {
      verdict = instance.call(hook, msg, state);
      // Changes only apply on Continue; then the final topic + payload must still fit one packet.
      if ((state.topic !== null || state.payload !== null) && verdictKind(verdict) === Verdict.Continue) {
        checkFinalMessage(this.name, this.services.output, hook, msg, state);
      }
    } catch (err) {
      this.fail(hook, err);
      return this.failureVerdict(hook);
    }
    this.breaker.success();
    const kind = verdictKind(verdict);
    if (kind === Verdict.Continue) {
      this.stats.verdicts.continue++;
      if (state.modified) {
        this.stats.verdicts.modified++;
        out.modified = true;
        if (state.topic !== null) msg.topic = state.topic;
        if (state.payload !== null) msg.payload = state.payload;
        if (state.qos >= 0) msg.qos = state.qos;
        if (state.retain >= 0) msg.retain = state.retain === 1;
      }
      if (state.ttlSec >= 0) out.ttlSec = state.ttlSec;
    } else if (kind === Verdict.Drop) {
      this.stats.verdicts.drop++;
    } else {
      this.stats.verdicts.deny++;
    }
    if (state.extras.length) for (const e of state.extras) out.extras.push(e);
    return verdict;
  }

  /** Run the tick hook; returns the messages it asked to publish. */
  tick(nowMs: number): CallState["extras"] {
    this.stats.calls.tick++;
    const instance = this.enabled ? this.available() : null;
    if (!instance) return [];
    const state = this.state;
    state.reset();
    state.hook = "tick";
    state.message = null;
    try {
      instance.tick(nowMs, state);
    } catch (err) {
      this.fail("tick", err);
      return [];
    }
    this.breaker.success();
    return state.extras.slice();
  }

  /** The instance to call, or null when the breaker is open or no instance could be started. */
  private available(): PluginInstance | null {
    if (!this.breaker.allow()) return null;
    if (!this.instance) this.restart();
    return this.instance;
  }

  private fail(hook: HookName, err: unknown): void {
    const kind = classifyTrap(err);
    this.stats.failures++;
    this.stats.traps[kind] = (this.stats.traps[kind] ?? 0) + 1;
    this.listener.trap(this, hook, kind, err);
    // A trapped AssemblyScript instance may be half-way through an allocation: never reuse it.
    this.instance?.dispose();
    this.instance = null;
    this.state = new CallState();
    this.noteFailure();
    this.restart();
  }

  private noteFailure(): void {
    const before = this.breaker.state;
    this.breaker.failure();
    if (this.breaker.state !== before) this.listener.breaker(this, this.breaker.state);
  }

  /** Start a fresh instance from the cached build (synchronous for Wasm). */
  private restart(): void {
    if (this.restarting || !this.factory) return;
    const factory = this.factory;
    const failed = (err: unknown) => {
      this.listener.log(this, 4, `restart failed: ${describeTrap(err)}`);
      this.noteFailure();
    };
    let started: PluginInstance | Promise<PluginInstance>;
    try {
      started = factory.instantiate(this.config, this.stateRef);
    } catch (err) {
      failed(err);
      return;
    }
    if (!(started instanceof Promise)) {
      this.adopt(factory, started);
      return;
    }
    this.restarting = started
      .then((instance) => this.adopt(factory, instance))
      .catch(failed)
      .finally(() => {
        this.restarting = null;
      });
  }

  private adopt(factory: PluginFactory, instance: PluginInstance): void {
    if (this.factory !== factory || this.instance) {
      instance.dispose(); // a reload won the race
      return;
    }
    this.instance = instance;
    this.stats.restarts++;
  }

  /** Half-open breakers need time to pass; the chain asks before each call anyway. */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      source: this.source,
      enabled: this.enabled,
      ready: this.ready,
      hooks: [...this.hooks],
      onError: this.onError,
      breaker: this.breaker.state,
      lastError: this.lastError,
      stats: this.stats,
    };
  }

  dispose(): void {
    this.instance?.dispose();
    this.instance = null;
  }
}

/** The plugin's per-call host-call caps; a bad value refuses the plugin naming the key. */
function hostCallLimits(spec: PluginSpec): HostCallLimits {
  const limits = { ...DEFAULT_HOST_CALL_LIMITS };
  for (const key of Object.keys(DEFAULT_HOST_CALL_LIMITS) as (keyof HostCallLimits)[]) {
    const value = spec.limits?.[key];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0) {
      throw new PluginError(spec.name, `refused: limits.${key} must be a non-negative integer, got ${value}`);
    }
    limits[key] = value;
  }
  return limits;
}

export { describeTrap };
