import { createHash } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { ABI_VERSION, Verdict, verdictKind, type HookName } from "./abi.js";
import { applyV5, checkV5Verdict } from "./v5-outcome.js";
import { CircuitBreaker, type BreakerState } from "./breaker.js";
import { checkFinalMessage } from "./host-calls.js";
import { CallState, PluginError, type PluginFactory, type PluginInstance, type PluginServices } from "./instance.js";
import type { KvStore } from "./kv.js";
import type { HookMessage, InjectedMessage } from "./message.js";
import { NativePluginFactory } from "./native-plugin.js";
import { DEFAULT_OUTPUT_RULES, type OutputRules } from "./output-rules.js";
import { admitBuild, type Admission } from "./admission.js";
import { classifyTrap, describeTrap, WasmPluginFactory } from "./wasm-plugin.js";
import { NODE_WASM_ENV } from "./wasm-node.js";
import { applyChanges, failureVerdict, type FailurePolicy } from "./call-outcome.js";
import { authOutcome, failedAuthOutcome, type AuthOutcome } from "./auth-calls.js";
import { countCall, DEFAULT_FUEL, DEFAULT_PAGES, hostCallLimits, MAX_FUEL, zeroCalls, type BuildCheck, type PluginSpec, type ReloadSource, type SlotListener, type SlotStats } from "./slot-spec.js";

export type { FailurePolicy };
export type { BuildCheck, PluginSpec, ReloadSource, SlotListener, SlotStats } from "./slot-spec.js";

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
  /** Digest of the running build's bytes (Wasm), null for native plugins. */
  sha256: string | null = null;
  /** What the running build's signature and manifest said when it was admitted. */
  admission: Admission | null = null;
  private readonly admissions = new WeakMap<PluginFactory, Admission>();
  private factory: PluginFactory | null = null;
  private instance: PluginInstance | null = null;
  private readonly breaker: CircuitBreaker;
  private readonly config: Uint8Array;
  private readonly services: PluginServices;
  private state = new CallState();
  private readonly stateRef = (): CallState => this.state;
  private restarting: Promise<void> | null = null;
  private reloading: Promise<boolean> | null = null;
  private idle: ReadonlySet<HookName> = new Set();

  constructor(
    private readonly spec: PluginSpec,
    kv: KvStore,
    private readonly listener: SlotListener,
    private readonly meterFuel = true,
    clock: () => number = Date.now,
    output: OutputRules = DEFAULT_OUTPUT_RULES,
    random?: (n: number) => Uint8Array,
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
      ...(random ? { random } : {}),
    };
  }

  get hooks(): ReadonlySet<HookName> {
    return this.factory?.hooks ?? new Set();
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  /** ABI version of the running build (decides how its verdict codes read). */
  get abiVersion(): number {
    return this.instance?.abiVersion ?? ABI_VERSION;
  }

  /** The reason string the last call set with its refusal (ABI v2), read right after run(). */
  get reasonString(): string | null {
    return this.state.reasonString;
  }

  get ready(): boolean {
    return this.instance !== null;
  }

  /**
   * Whether the chain should call this plugin's `hook`: it is enabled, exports
   * the hook, and the running instance did not declare it idle in init
   * (abi-idle.ts). The chain's per-hook index is built from this.
   */
  has(hook: HookName): boolean {
    return this.enabled && this.factory !== null && this.factory.hooks.has(hook) && !this.idle.has(hook);
  }

  /** Hooks the running instance declared idle (abi-idle.ts); kept across a restart until the new instance says otherwise. */
  get idleHooks(): ReadonlySet<HookName> {
    return this.idle;
  }

  /** Load the build and start an instance. Throws PluginError naming the reason. */
  async load(): Promise<void> {
    const bytes = await this.readSource();
    const factory = await this.build(bytes);
    this.instance = await factory.instantiate(this.config, this.stateRef);
    this.idle = this.instance.idleHooks;
    this.factory = factory;
    this.admission = this.admissions.get(factory) ?? null;
    this.sha256 = bytes && sha256Hex(bytes);
  }

  /** The Wasm file's bytes; null for a native plugin (loaded by module path). */
  private async readSource(): Promise<Uint8Array | null> {
    if (this.kind === "native") return null;
    try {
      return await readFile(this.source);
    } catch (err) {
      throw new PluginError(this.name, `refused: cannot read ${this.source}: ${(err as Error).message}`);
    }
  }

  private async build(bytes: Uint8Array | null): Promise<PluginFactory> {
    if (bytes === null) return NativePluginFactory.load(this.source, this.services);
    const limits = this.spec.limits ?? {};
    if (limits.fuel != null && !(Number.isInteger(limits.fuel) && limits.fuel > 0 && limits.fuel <= MAX_FUEL)) {
      throw new PluginError(this.name, `refused: limits.fuel must be an integer from 1 to ${MAX_FUEL}, got ${limits.fuel}`);
    }
    // Pin, signature, manifest and config schema first: an untrusted build is never compiled.
    const admission = admitBuild(this.name, bytes, { ...(this.spec.sha256 !== undefined ? { sha256: this.spec.sha256 } : {}), ...(this.spec.trust ? { trust: this.spec.trust } : {}), config: this.spec.config ?? {} });
    const factory = await WasmPluginFactory.compile(bytes, this.services, {
      fuel: this.meterFuel ? (limits.fuel === undefined ? DEFAULT_FUEL : limits.fuel) : null,
      memoryPages: limits.memoryPages ?? DEFAULT_PAGES,
    }, NODE_WASM_ENV);
    this.admissions.set(factory, admission);
    return factory;
  }

  /**
   * Compile a build and run its init with this plugin's config in a throwaway
   * instance, without touching the running one: what a reload would do, minus
   * the swap. Throws PluginError naming the reason a reload would refuse it.
   */
  async check(bytes: Uint8Array): Promise<BuildCheck> {
    if (this.kind !== "wasm") throw new PluginError(this.name, "refused: a native plugin is loaded from its module, not from uploaded bytes");
    const factory = await this.build(bytes);
    (await factory.instantiate(this.config, () => new CallState())).dispose();
    const admission = this.admissions.get(factory)!;
    const manifest = admission.manifest && { name: admission.manifest.name, version: admission.manifest.version };
    return { sha256: sha256Hex(bytes), size: bytes.length, hooks: [...factory.hooks], signature: admission.trust, manifest };
  }

  /**
   * Replace the running build with the file's current content, or with given
   * bytes. The new build is compiled and its init run before the swap; if either
   * fails the old instance keeps serving and the reason is returned.
   */
  reload(from: ReloadSource = {}): Promise<boolean> {
    if (from.bytes) return this.reloadBytes(from.bytes, from.save ?? false, from.vet);
    // Coalesce bursts (editors write a file in several steps; SIGHUP during a watch event).
    if (this.reloading) return this.reloading;
    return this.swap(this.source, from.vet, async () => {
      const bytes = await this.readSource();
      if (from.onlyIfChanged && bytes && sha256Hex(bytes) === this.sha256) return "unchanged";
      return bytes;
    });
  }

  private async reloadBytes(bytes: Uint8Array, save: boolean, vet: ReloadSource["vet"]): Promise<boolean> {
    if (this.kind !== "wasm") {
      this.lastError = "refused: a native plugin is loaded from its module, not from uploaded bytes";
      return false;
    }
    // Given bytes are never coalesced with a file reload: wait for it, then apply ours.
    while (this.reloading) await this.reloading.catch(() => false);
    const ok = await this.swap("uploaded bytes", vet, async () => bytes);
    if (ok && save) {
      // Write then rename, so the file watcher never sees half a module; it then finds the running digest and skips.
      const tmp = `${this.source}.upload-${process.pid}`;
      try {
        await writeFile(tmp, bytes);
        await rename(tmp, this.source);
      } catch (err) {
        this.lastError = `running the new build, but could not save it to ${this.source}: ${(err as Error).message}`;
        this.listener.log(this, 3, this.lastError);
      }
    }
    return ok;
  }

  /** `next` yields the new build's bytes (null for a native plugin's module), or "unchanged" to keep the running one. */
  private swap(origin: string, vet: ReloadSource["vet"], next: () => Promise<Uint8Array | null | "unchanged">): Promise<boolean> {
    this.reloading = (async () => {
      try {
        const bytes = await next();
        if (bytes === "unchanged") return true;
        const factory = await this.build(bytes);
        const instance = await factory.instantiate(this.config, this.stateRef);
        const refusal = vet?.(factory.hooks) ?? null;
        if (refusal !== null) {
          instance.dispose();
          throw new Error(refusal);
        }
        const old = this.instance;
        this.factory = factory;
        this.instance = instance;
        this.idle = instance.idleHooks;
        this.admission = this.admissions.get(factory) ?? null;
        this.sha256 = bytes ? sha256Hex(bytes) : null;
        this.breaker.reset();
        old?.dispose();
        this.stats.reloads++;
        this.lastError = null;
        this.listener.log(this, 2, `reloaded from ${origin}${this.sha256 ? ` (sha256 ${this.sha256})` : ""}`);
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
    return failureVerdict(this.onError, hook);
  }

  /**
   * Run one hook. Returns the verdict; on Continue, the plugin's changes have
   * been applied to `msg` and its extra publishes appended to `extras`.
   */
  run(hook: Exclude<HookName, "tick">, msg: HookMessage, out: { ttlSec: number; modified: boolean; propertiesModified: boolean; extras: InjectedMessage[] }): number {
    countCall(this.stats.calls, hook);
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
    let v5Changed = false;
    try {
      verdict = instance.call(hook, msg, state);
      // Changes only apply on Continue; then the final topic + payload must still fit one packet.
      if (verdictKind(verdict) === Verdict.Continue) {
        if (state.topic !== null || state.payload !== null) checkFinalMessage(this.name, this.services.output, hook, msg, state);
      }
      // v2: property changes must fit one packet; a refusal's reason code must fit its packet.
      v5Changed = checkV5Verdict(this.name, this.services.output, hook, msg, state, verdict, instance.abiVersion);
    } catch (err) {
      this.fail(hook, err);
      return this.failureVerdict(hook);
    }
    this.breaker.success();
    const kind = verdictKind(verdict);
    if (kind === Verdict.Continue) {
      this.stats.verdicts.continue++;
      if (applyChanges(state, msg)) {
        this.stats.verdicts.modified++;
        out.modified = true;
      }
      if (v5Changed) {
        if (!state.modified) this.stats.verdicts.modified++;
        applyV5(msg, state, out);
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

  /** Enhanced-authentication methods the running build declared in init (abi-auth.ts). */
  get authMethods(): readonly string[] {
    return this.enabled ? (this.instance?.authMethods ?? []) : [];
  }

  /**
   * One step of an enhanced-authentication exchange (abi-auth.ts). A trap, an
   * open breaker or a missing instance is a failure (failedAuthOutcome); extra
   * publishes are not offered to this hook.
   */
  runAuth(msg: HookMessage): AuthOutcome {
    this.stats.calls.auth++;
    const instance = this.available();
    if (instance) {
      const state = this.state;
      state.reset();
      state.hook = "auth";
      state.message = msg;
      try {
        const out = authOutcome(this.name, instance.call("auth", msg, state), state);
        this.breaker.success();
        if (out.result === "failure") this.stats.verdicts.deny++;
        else this.stats.verdicts.continue++;
        return out;
      } catch (err) {
        this.fail("auth", err);
      }
    } else this.stats.failures++;
    return failedAuthOutcome(this.name, this.onError);
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
    // init may read kv, so a fresh instance can differ: the chain rebuilds its index then.
    if (!sameSet(this.idle, instance.idleHooks)) {
      this.idle = instance.idleHooks;
      this.listener.hooksChanged?.(this);
    }
  }

  /** Half-open breakers need time to pass; the chain asks before each call anyway. */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      source: this.source,
      sha256: this.sha256,
      signature: this.admission?.trust ?? null,
      manifest: this.admission?.manifest ? { name: this.admission.manifest.name, version: this.admission.manifest.version } : null,
      enabled: this.enabled,
      ready: this.ready,
      hooks: [...this.hooks],
      // Declared idle by the running instance: not called, so their call counts stay 0.
      idleHooks: [...this.idle],
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

export { describeTrap };

function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
