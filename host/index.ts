/** The public interface of the plugin host. The broker uses nothing else from host/. */
export * from "./abi.js";
export { PluginChain, type ChainOptions, type ChainEvents } from "./chain.js";
export { PluginSlot, type PluginSpec, type FailurePolicy, type SlotStats, type ReloadSource, type BuildCheck } from "./plugin-slot.js";
export type { BreakerOptions, BreakerState } from "./breaker.js";
export { PluginError } from "./instance.js";
export { emptyMessage, type ClientCertificate, type HookMessage, type HookOutcome, type InjectedMessage } from "./message.js";
export { MemoryKvStore, KvLimitError, DEFAULT_KV_LIMITS, type KvStore, type KvLimits } from "./kv.js";
export { classifyTrap, type TrapKind } from "./wasm-plugin.js";
export { DEFAULT_HOST_CALL_LIMITS, FUEL_PER_BYTE, HOST_CALL_FUEL, MAX_LOG_LINE_BYTES, type HostCallLimits } from "./host-calls.js";
export { DEFAULT_OUTPUT_RULES, type OutputRules } from "./output-rules.js";
export { emptyV5, type MessageV5, type UserProperty } from "./message-v5.js";
export { ReasonCode, returnCodeFor } from "./reason-codes.js";
export { readPublicKey, SignatureError, type TrustPolicy, type TrustStatus, type PublicKeyEntry } from "./signing.js";
export { readManifest, type PluginManifest } from "./manifest.js";
export type { AuthOutcome } from "./auth-calls.js";
