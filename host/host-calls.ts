/**
 * What a plugin's host calls cost and how far they may go. Fuel counts the
 * plugin's own instructions; this module counts the work the host does on its
 * behalf — bytes copied, strings decoded, messages queued, lines logged — so a
 * cheap loop around an import cannot make the host copy, allocate or log
 * without bound. Every host import (Wasm) and every native SDK call that
 * reaches the host goes through a `HostCalls` before it does its work:
 *
 *   1. `charge(import, bytes)` takes fuel (Wasm only): a base per call plus
 *      `FUEL_PER_BYTE` for each byte the host will copy or decode. Out of fuel
 *      is the same trap as running out in the plugin's own code.
 *   2. the per-call caps (`publish`, `log`) throw HostCallLimitError, a trap of
 *      kind "host-limit": the failure policy answers the message, the instance
 *      is replaced and the breaker counts it, exactly as for fuel.
 *   3. what the plugin hands back is validated (output-rules.ts) and refused
 *      with InvalidOutputError, a trap of kind "invalid-output".
 *
 * A new import adds its row to HOST_CALL_FUEL and calls `charge` first.
 */
import type { HookName } from "./abi.js";
import { V2_HOST_CALL_FUEL } from "./abi-v2.js";
import { AUTH_HOST_CALL_FUEL } from "./abi-auth.js";
import { IDLE_HOST_CALL_FUEL, type IdleHook } from "./abi-idle.js";
import { FuelExhaustedError } from "./fuel-names.js";
import type { CallState } from "./instance.js";
import type { HookMessage } from "./message.js";
import { checkPacket, checkTopic, type OutputRules } from "./output-rules.js";

/**
 * Fuel per byte the host copies or decodes for a plugin. Calibrated like
 * CRYPTO_FUEL_PER_BLOCK: metered AssemblyScript runs ~25 fuel per ns, and
 * `Buffer.from` of a 1 MiB view measured 0.32 ns/byte on the reference
 * machine (UTF-8 decoding 0.54 ns/byte): 8 fuel per byte charges a copy about
 * what the same time in Wasm would. A 1 MiB extra publish costs ~8.4 M fuel.
 */
export const FUEL_PER_BYTE = 8;

/**
 * Base fuel of each host import, charged on every call before any work (at
 * ~25 fuel per ns: a bare import call ≈ 20 ns; a queued publish allocates and
 * later costs the broker a routing pass; kv reaches LMDB). Crypto is charged
 * per SHA-256 block on top (CRYPTO_FUEL_PER_BLOCK).
 */
export const HOST_CALL_FUEL = {
  log: 5_000,
  now_ms: 500,
  publish: 25_000,
  set_topic: 1_000,
  set_payload: 1_000,
  set_qos: 500,
  set_retain: 500,
  set_ttl: 500,
  kv_get: 10_000,
  kv_put: 25_000,
  kv_delete: 10_000,
  sha256: 1_000,
  hmac_sha256: 1_000,
  pbkdf2_sha256: 1_000,
  trace: 5_000,
  client_cert: 500,
  ...V2_HOST_CALL_FUEL,
  ...AUTH_HOST_CALL_FUEL,
  ...IDLE_HOST_CALL_FUEL,
} as const;
export type HostCallName = keyof typeof HOST_CALL_FUEL;

/** Per-call caps on what one hook call may ask of the host (a plugin's `limits`). */
export interface HostCallLimits {
  /** Extra publishes (`publish`) one hook call may queue. */
  maxPublishesPerCall: number;
  /** Their total size, topic and payload bytes, per hook call. */
  maxPublishBytesPerCall: number;
  /** Log lines (log.*, trace) one hook call may write. */
  maxLogLinesPerCall: number;
}

export const DEFAULT_HOST_CALL_LIMITS: HostCallLimits = {
  maxPublishesPerCall: 100,
  maxPublishBytesPerCall: 4 * 1024 * 1024,
  maxLogLinesPerCall: 32,
};

/** Longer log lines are cut here (the host decodes no more than this). */
export const MAX_LOG_LINE_BYTES = 4096;

/** A host call went over one of the plugin's per-call caps (trap kind "host-limit"). */
export class HostCallLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostCallLimitError";
  }
}

export type { FuelTank } from "./fuel-tank.js";
import type { FuelTank } from "./fuel-tank.js";

/**
 * One plugin instance's accountant. Per-call counters live in the CallState,
 * which the slot resets before every call.
 */
export class HostCalls {
  /** Set once the instance's fuel global is known (null: native or unmetered, nothing is charged). */
  fuel: FuelTank | null = null;
  /** While init runs (control plane): log lines are not capped. */
  initializing = false;
  /** Enhanced-authentication methods the instance declared during init (abi-auth.ts). */
  readonly authMethods: string[] = [];
  /** Hooks the instance declared idle during init (abi-idle.ts): the host does not call them. */
  readonly idleHooks = new Set<IdleHook>();

  constructor(
    private readonly plugin: string,
    private readonly limits: HostCallLimits,
    private readonly rules: OutputRules,
  ) {}

  /** Charge a host import: its base cost plus FUEL_PER_BYTE for each byte it will move. Before the work. */
  charge(call: HostCallName, bytes = 0): void {
    this.take(HOST_CALL_FUEL[call] + bytes * FUEL_PER_BYTE);
  }

  /** Take fuel; out of fuel traps as the plugin's own code would. */
  take(amount: number): void {
    if (this.fuel && !this.fuel.take(amount)) throw new FuelExhaustedError(`plugin "${this.plugin}" ran out of fuel`);
  }

  /** Count a log line against the cap; returns how many of its bytes the host will read. */
  log(state: CallState, bytes: number): number {
    if (++state.logLines > this.limits.maxLogLinesPerCall && !this.initializing) {
      throw new HostCallLimitError(
        `plugin "${this.plugin}" wrote more than ${this.limits.maxLogLinesPerCall} log lines in one call (limits.maxLogLinesPerCall)`,
      );
    }
    return Math.min(bytes, MAX_LOG_LINE_BYTES);
  }

  /** Count an extra publish against the caps. Before the payload is copied. */
  publish(state: CallState, topicBytes: number, payloadBytes: number): void {
    if (state.extras.length + 1 > this.limits.maxPublishesPerCall) {
      throw new HostCallLimitError(
        `plugin "${this.plugin}" published more than ${this.limits.maxPublishesPerCall} messages in one call (limits.maxPublishesPerCall)`,
      );
    }
    const total = state.publishBytes + topicBytes + payloadBytes;
    if (total > this.limits.maxPublishBytesPerCall) {
      throw new HostCallLimitError(
        `plugin "${this.plugin}" published more than ${this.limits.maxPublishBytesPerCall} bytes in one call (limits.maxPublishBytesPerCall)`,
      );
    }
    state.publishBytes = total;
  }

  /** Validate an extra publish exactly like a client's PUBLISH. */
  checkPublish(topic: string, topicBytes: number, payloadBytes: number, qos: number): void {
    checkTopic(this.plugin, this.rules, "publish", topic, topicBytes, null);
    checkPacket(this.plugin, this.rules, topicBytes, payloadBytes, qos);
  }

  /** Validate a topic rewrite: a filter in the subscribe hook, a topic name elsewhere. */
  checkSetTopic(state: CallState, topic: string, topicBytes: number): void {
    checkTopic(this.plugin, this.rules, state.hook, topic, topicBytes, state.message?.topic ?? null);
  }

  /** Validate a payload rewrite against the packet it will travel in (the topic as it stands now). */
  checkSetPayload(state: CallState, payloadBytes: number): void {
    if (!carriesPayload(state.hook)) return;
    const topic = state.topic ?? state.message?.topic ?? "";
    checkPacket(this.plugin, this.rules, Buffer.byteLength(topic), payloadBytes, state.qos >= 0 ? state.qos : (state.message?.qos ?? 0));
  }
}

/** Hooks whose message goes out as a PUBLISH (and so must fit maxPacketSize). */
export function carriesPayload(hook: HookName): boolean {
  return hook === "publish" || hook === "deliver" || hook === "persist";
}

/**
 * After a call that changed topic or payload: the final combination must still
 * fit in one packet (a payload set first and a longer topic set after it).
 */
export function checkFinalMessage(plugin: string, rules: OutputRules, hook: HookName, msg: HookMessage, state: CallState): void {
  if (!carriesPayload(hook) || (state.topic === null && state.payload === null)) return;
  const topic = state.topic ?? msg.topic;
  const payload = state.payload ?? msg.payload;
  checkPacket(plugin, rules, Buffer.byteLength(topic), payload.length, state.qos >= 0 ? state.qos : msg.qos);
}
