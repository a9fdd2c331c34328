/**
 * wasmq plugin ABI v2-r3: idle hooks. A plugin may declare, from `init`, that
 * for this instance's config one of its hooks always answers Continue with no
 * changes (`hook_idle(hook)`); the host then does not call it at all, and the
 * broker skips the stage when no other plugin needs it (e.g. acl without deny
 * rules leaves every delivery alone). Additive: a module that does not import
 * `hook_idle` loads and behaves exactly as before.
 * `plugins-as/sdk/abi.ts` mirrors the hook numbers for plugins.
 */

/** `hook_idle`'s argument: the hook's number (its index in abi.ts HOOKS). */
export const HookId = {
  connect: 0,
  subscribe: 1,
  publish: 2,
  deliver: 3,
  persist: 4,
  tick: 5,
  auth: 6,
} as const;

/**
 * Hooks a plugin may declare idle. connect and auth are authentication: a
 * plugin that exports them is what makes the broker require credentials
 * (broker/net/exposure.ts), so they are never skipped; tick is skipped anyway
 * when a plugin has no onTick.
 */
export const IDLE_HOOKS = ["subscribe", "publish", "deliver", "persist"] as const;
export type IdleHook = (typeof IDLE_HOOKS)[number];

/** Host imports for idle hooks (module "wasmq"). */
export const IDLE_HOST_IMPORTS = [
  "hook_idle", // (hook: i32) -> void: init only; this instance's `hook` always answers Continue unchanged
] as const;

export const IDLE_HOST_CALL_FUEL = { hook_idle: 500 } as const;
