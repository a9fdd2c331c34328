import { EventEmitter } from "node:events";
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import { HOOKS, Verdict, verdictCode, verdictKind, type HookName } from "./abi.js";
import { refusalCodes } from "./v5-outcome.js";
import type { BreakerState } from "./breaker.js";
import type { KvStore } from "./kv.js";
import type { HookMessage, HookOutcome, InjectedMessage } from "./message.js";
import { PluginError } from "./instance.js";
import type { OutputRules } from "./output-rules.js";
import { PluginSlot, type BuildCheck, type PluginSpec, type ReloadSource } from "./plugin-slot.js";
import type { TrapKind } from "./wasm-plugin.js";
import type { TrustPolicy } from "./signing.js";

export interface ChainOptions {
  kv: KvStore;
  /** Publishes a message a plugin asked for (routing, fan-out, tick output). */
  publish: (message: InjectedMessage) => void;
  /** false = run Wasm plugins without fuel metering (bench only). */
  meterFuel?: boolean;
  /** What plugins get from now(); the harness controls it, the broker uses Date.now. */
  clock?: () => number;
  /** Signature policy for every Wasm plugin (see host/signing.ts). */
  trust?: TrustPolicy;
  /**
   * Asked before a reloaded build replaces the running one (admin API, SIGHUP,
   * file watch alike): a reason refuses the swap and the old build keeps
   * running. The broker uses it so a reload cannot remove authentication.
   */
  vetReload?: (slot: PluginSlot, hooks: ReadonlySet<HookName>) => string | null;
  /** The broker's rules for what plugins hand back (topic length, packet size, reserved prefixes). */
  output?: OutputRules;
  /** What plugins get from random_bytes; the harness may pin it, the broker uses the platform CSPRNG. */
  random?: (n: number) => Uint8Array;
}

export interface ChainEvents {
  log: [plugin: string, level: number, message: string];
  trap: [plugin: string, hook: HookName, kind: TrapKind, error: unknown];
  breaker: [plugin: string, state: BreakerState];
  reload: [plugin: string, ok: boolean, error: string | null];
}

type MessageHook = Exclude<HookName, "tick">;

/**
 * The ordered plugin chain. Each message hook runs the plugins that implement
 * it, in config order, on one message object: a Continue passes the (possibly
 * modified) message on, the first Drop or Deny ends the chain.
 */
export class PluginChain extends EventEmitter<ChainEvents> {
  readonly slots: PluginSlot[];
  private byHook: Record<HookName, PluginSlot[]> = emptyIndex();
  private readonly outcome: HookOutcome & { extras: InjectedMessage[] } = {
    verdict: 0,
    returnCode: 0,
    modified: false,
    ttlSec: 0,
    decidedBy: null,
    reasonCode: 0,
    reasonString: null,
    propertiesModified: false,
    extras: [],
  };
  private watchers: FSWatcher[] = [];

  private constructor(
    specs: PluginSpec[],
    private readonly opts: ChainOptions,
  ) {
    super();
    const listener = {
      trap: (slot: PluginSlot, hook: HookName, kind: TrapKind, error: unknown) => this.emit("trap", slot.name, hook, kind, error),
      breaker: (slot: PluginSlot, state: BreakerState) => this.emit("breaker", slot.name, state),
      log: (slot: PluginSlot, level: number, message: string) => this.emit("log", slot.name, level, message),
      hooksChanged: () => this.reindex(),
    };
    this.slots = specs.map((spec) => new PluginSlot(opts.trust && !spec.trust ? { ...spec, trust: opts.trust } : spec, opts.kv, listener, opts.meterFuel ?? true, opts.clock ?? Date.now, opts.output, opts.random));
  }

  /** Load every plugin; the first one that cannot load rejects with a PluginError naming it. */
  static async load(specs: PluginSpec[], opts: ChainOptions): Promise<PluginChain> {
    const chain = new PluginChain(specs, opts);
    for (const slot of chain.slots) await slot.load();
    chain.reindex();
    return chain;
  }

  /** Rebuild the per-hook lists (after a reload, enable or disable). */
  reindex(): void {
    const index = emptyIndex();
    for (const slot of this.slots) for (const hook of HOOKS) if (slot.has(hook)) index[hook].push(slot);
    this.byHook = index;
  }

  has(hook: HookName): boolean {
    return this.byHook[hook].length > 0;
  }

  /**
   * The plugin that runs enhanced-authentication method `method` (abi-auth.ts):
   * the first in chain order that declared it, or null (CONNACK 0x8C).
   */
  authenticator(method: string): PluginSlot | null {
    for (const slot of this.byHook.auth) if (slot.authMethods.includes(method)) return slot;
    return null;
  }

  slot(name: string): PluginSlot | undefined {
    return this.slots.find((s) => s.name === name);
  }

  /**
   * Run a message hook. The returned outcome object is reused by the next call:
   * read it before calling the chain again.
   */
  run(hook: MessageHook, msg: HookMessage): HookOutcome {
    const out = this.outcome;
    out.verdict = Verdict.Continue;
    out.returnCode = 0;
    out.modified = false;
    out.ttlSec = 0;
    out.decidedBy = null;
    out.reasonCode = 0;
    out.reasonString = null;
    out.propertiesModified = false;
    const slots = this.byHook[hook];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      const verdict = slot.run(hook, msg, out);
      const kind = verdictKind(verdict);
      if (kind !== Verdict.Continue) {
        out.verdict = kind === Verdict.Drop ? Verdict.Drop : Verdict.Deny;
        // v1: the code is a 3.1.1 return code, as it always was. v2 may choose an MQTT 5 reason code (0x80+).
        refusalCodes(out, verdict, slot.abiVersion, slot.reasonString);
        out.decidedBy = slot.name;
        break;
      }
    }
    if (out.extras.length) {
      const extras = out.extras.splice(0);
      // A denied publish is an attack or a mistake: nothing it caused goes out.
      if (!(hook === "publish" && out.verdict === Verdict.Deny)) for (const e of extras) this.opts.publish(e);
    }
    return out;
  }

  tick(nowMs: number): void {
    for (const slot of this.byHook.tick) for (const e of slot.tick(nowMs)) this.opts.publish(e);
  }

  /** Reload one plugin (or all) from disk, or one from given bytes; resolves to each one's outcome. */
  async reload(name?: string, from: ReloadSource = {}): Promise<{ plugin: string; ok: boolean; error: string | null }[]> {
    const targets = name === undefined ? this.slots : this.slots.filter((s) => s.name === name);
    const results = [];
    for (const slot of targets) {
      const vet = this.opts.vetReload;
      const ok = await slot.reload(vet ? { ...from, vet: (hooks) => vet(slot, hooks) } : from);
      this.emit("reload", slot.name, ok, slot.lastError);
      results.push({ plugin: slot.name, ok, error: slot.lastError });
    }
    this.reindex();
    return results;
  }

  /**
   * What reloading `slot` from `bytes` would do, without doing it: the build's
   * digest and hooks, or a PluginError with the reason it would be refused
   * (compile, init, or the broker's vetting).
   */
  async check(slot: PluginSlot, bytes: Uint8Array): Promise<BuildCheck> {
    const result = await slot.check(bytes);
    const refusal = this.opts.vetReload?.(slot, new Set(result.hooks)) ?? null;
    if (refusal !== null) throw new PluginError(slot.name, refusal);
    return result;
  }

  setEnabled(name: string, enabled: boolean): boolean {
    const slot = this.slot(name);
    if (!slot) return false;
    slot.enabled = enabled;
    this.reindex();
    return true;
  }

  /**
   * Watch each plugin's file and hot-reload it when it changes. The folder is
   * watched rather than the file, because build tools replace files by rename.
   */
  watchFiles(debounceMs = 150): void {
    const byDir = new Map<string, PluginSlot[]>();
    for (const slot of this.slots) {
      const dir = dirname(slot.source);
      byDir.set(dir, [...(byDir.get(dir) ?? []), slot]);
    }
    const timers = new Map<string, NodeJS.Timeout>();
    for (const [dir, slots] of byDir) {
      const watcher = watch(dir, (_event, file) => {
        for (const slot of slots) {
          if (file !== null && file !== basename(slot.source)) continue;
          clearTimeout(timers.get(slot.name));
          timers.set(
            slot.name,
            setTimeout(() => {
              timers.delete(slot.name);
              void this.reload(slot.name, { onlyIfChanged: true });
            }, debounceMs),
          );
        }
      });
      watcher.on("error", (err) => this.emit("log", slots[0]!.name, 3, `file watch failed: ${err.message}`));
      this.watchers.push(watcher);
    }
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    for (const slot of this.slots) slot.dispose();
  }
}

function emptyIndex(): Record<HookName, PluginSlot[]> {
  return { connect: [], subscribe: [], publish: [], deliver: [], persist: [], tick: [], auth: [] };
}
