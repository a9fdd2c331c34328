/**
 * One Wasm plugin run as the harness runs it, with no broker, no files and no
 * node: imports: what the dashboard's playground executes in the browser. The
 * ABI (wasm-plugin.ts), the failure policy and change application
 * (call-outcome.ts) and the result shape (harness-core.ts) are the broker's
 * own; the environment — crypto, and fuel metering (which the dashboard asks
 * the broker for) — comes in a WasmHostEnv. Like a chain of one plugin: a
 * trap answers the message by the failure policy, the next message gets a
 * fresh instance, and the circuit breaker (breaker.ts) opens after repeated
 * traps, as in the broker.
 */
import { authOutcome, failedAuthOutcome } from "./auth-calls.js";
import { Verdict, verdictCode, verdictKind, type HookName } from "./abi.js";
import { CircuitBreaker, type BreakerOptions } from "./breaker.js";
import { applyChanges, failureVerdict, type FailurePolicy } from "./call-outcome.js";
import { harnessLogLine, newCollector, runStep, type HarnessMessage, type HarnessResult, type HarnessTarget } from "./harness-core.js";
import { CallState, type PluginInstance } from "./instance.js";
import { checkFinalMessage, DEFAULT_HOST_CALL_LIMITS } from "./host-calls.js";
import { MemoryKvStore } from "./kv.js";
import { DEFAULT_OUTPUT_RULES } from "./output-rules.js";
import type { HookOutcome } from "./message.js";
import type { WasmHostEnv } from "./wasm-env.js";
import { classifyTrap, WasmPluginFactory } from "./wasm-plugin.js";
import { applyV5, checkV5Verdict, refusalCodes } from "./v5-outcome.js";

export interface PlaygroundOptions {
  name: string;
  config: Record<string, unknown>;
  /** Fuel per call, or null to run unmetered. */
  fuel: number | null;
  memoryPages?: number;
  onError?: FailurePolicy;
  breaker?: Partial<BreakerOptions>;
  env: WasmHostEnv;
}

export interface PlaygroundResult extends HarnessResult {
  /** Fuel the call used; null when unmetered, for a tick, or when the call trapped. */
  fuel: number | null;
}

export interface Playground {
  readonly hooks: ReadonlySet<HookName>;
  /** Hooks the current instance declared idle in init (abi-idle.ts): like the broker, the playground does not call them. */
  readonly idleHooks: ReadonlySet<HookName>;
  run(message: HarnessMessage, index: number): PlaygroundResult;
  close(): void;
}

const DEFAULT_PAGES = 256;

export async function createPlayground(bytes: Uint8Array, opts: PlaygroundOptions): Promise<Playground> {
  const collector = newCollector();
  const services = {
    name: opts.name,
    kv: new MemoryKvStore(),
    log: (level: number, message: string) => collector.logs.push(harnessLogLine(level, message)),
    now: () => collector.pinnedNow ?? Date.now(),
    // The harness's defaults (a chain loaded without broker limits): the same caps and output checks.
    hostLimits: { ...DEFAULT_HOST_CALL_LIMITS },
    output: DEFAULT_OUTPUT_RULES,
  };
  const factory = await WasmPluginFactory.compile(bytes, services, { fuel: opts.fuel, memoryPages: opts.memoryPages ?? DEFAULT_PAGES }, opts.env);
  const config = new TextEncoder().encode(JSON.stringify(opts.config));
  const onError = opts.onError ?? "fail-closed";
  let state = new CallState();
  const stateRef = () => state;
  let instance: PluginInstance | null = factory.instantiate(config, stateRef);
  let fuel: number | null = null;
  const breaker = new CircuitBreaker(opts.breaker);

  const trapped = (hook: HookName, err: unknown) => {
    collector.trap = classifyTrap(err);
    // A trapped instance may be half-way through an allocation: start a fresh one for the next message.
    instance?.dispose();
    instance = null;
    state = new CallState();
    breaker.failure();
    try {
      instance = factory.instantiate(config, stateRef);
    } catch (restartErr) {
      collector.logs.push(harnessLogLine(4, `restart failed: ${(restartErr as Error).message}`));
    }
    void hook;
  };

  const target: HarnessTarget = {
    run(hook, msg): HookOutcome {
      const out: HookOutcome = { verdict: Verdict.Continue, returnCode: 0, modified: false, ttlSec: 0, decidedBy: null, reasonCode: 0, reasonString: null, propertiesModified: false };
      let v5Changed = false;
      fuel = null;
      if (!factory.hooks.has(hook) || instance?.idleHooks.has(hook)) return out;
      let verdict: number;
      const extras = [];
      if (!breaker.allow() || !instance) {
        verdict = failureVerdict(onError, hook);
      } else {
        state.reset();
        state.hook = hook;
        state.message = msg;
        try {
          verdict = instance.call(hook, msg, state);
          if (opts.fuel !== null) fuel = instance.lastFuelUsed;
          // As the plugin slot: changes only apply on Continue, and the final message must still fit one packet.
          if ((state.topic !== null || state.payload !== null) && verdictKind(verdict) === Verdict.Continue) {
            checkFinalMessage(opts.name, services.output, hook, msg, state);
          }
          v5Changed = checkV5Verdict(opts.name, services.output, hook, msg, state, verdict, instance.abiVersion);
          breaker.success();
          if (verdictKind(verdict) === Verdict.Continue) {
            out.modified = applyChanges(state, msg);
            if (v5Changed) applyV5(msg, state, out);
            if (state.ttlSec >= 0) out.ttlSec = state.ttlSec;
          }
          extras.push(...state.extras);
        } catch (err) {
          fuel = null;
          trapped(hook, err);
          verdict = failureVerdict(onError, hook);
        }
      }
      const kind = verdictKind(verdict);
      if (kind !== Verdict.Continue) {
        out.verdict = kind === Verdict.Drop ? Verdict.Drop : Verdict.Deny;
        refusalCodes(out, verdict, instance?.abiVersion ?? 2, state.reasonString);
        out.decidedBy = opts.name;
      }
      // As the chain: a denied publish sends nothing it caused.
      if (!(hook === "publish" && out.verdict === Verdict.Deny)) collector.published.push(...extras);
      return out;
    },
    // As the plugin slot's runAuth: one enhanced-authentication step; a trap is a failure.
    authenticate(msg) {
      fuel = null;
      if (!factory.hooks.has("auth") || !instance || !instance.authMethods.includes(msg.topic)) return null;
      if (!breaker.allow()) return failedAuthOutcome(opts.name, onError);
      state.reset();
      state.hook = "auth";
      state.message = msg;
      try {
        const out = authOutcome(opts.name, instance.call("auth", msg, state), state);
        if (opts.fuel !== null) fuel = instance.lastFuelUsed;
        breaker.success();
        return out;
      } catch (err) {
        trapped("auth", err);
        return failedAuthOutcome(opts.name, onError);
      }
    },
    tick(nowMs) {
      fuel = null;
      if (!factory.hooks.has("tick") || !breaker.allow() || !instance) return;
      state.reset();
      state.hook = "tick";
      state.message = null;
      try {
        instance.tick(nowMs, state);
        breaker.success();
        collector.published.push(...state.extras);
      } catch (err) {
        trapped("tick", err);
      }
    },
  };

  return {
    hooks: factory.hooks,
    get idleHooks() {
      return instance?.idleHooks ?? new Set<HookName>();
    },
    run(message, index) {
      const result = runStep(target, collector, message, index);
      return { ...result, fuel };
    },
    close() {
      instance?.dispose();
      instance = null;
    },
  };
}
