/**
 * Idle hooks (abi-idle.ts) on the host: the check behind `hook_idle`, shared by
 * the Wasm import and the native SDK's `declareIdle`. Fuel is charged by the
 * Wasm import before it calls in here. No node: imports (the playground loads
 * the Wasm host in a browser).
 */
import { HOOKS, type HookName } from "./abi.js";
import { IDLE_HOOKS, type IdleHook } from "./abi-idle.js";
import type { HostCalls } from "./host-calls.js";
import { InvalidOutputError } from "./output-rules.js";

/** `hook_idle`: during init only, and only for a hook that may be skipped. */
export function declareIdleHook(calls: HostCalls, plugin: string, hook: number): void {
  if (!calls.initializing) throw new InvalidOutputError(plugin, "a hook is declared idle in init, not in a hook");
  const name: HookName | undefined = Number.isInteger(hook) ? HOOKS[hook] : undefined;
  if (name === undefined) throw new InvalidOutputError(plugin, `hook_idle: ${hook} is not a hook number`);
  if (!(IDLE_HOOKS as readonly string[]).includes(name)) {
    throw new InvalidOutputError(plugin, `hook_idle: ${name} cannot be declared idle (only ${IDLE_HOOKS.join(", ")})`);
  }
  calls.idleHooks.add(name as IdleHook);
}

interface ImportContext {
  plugin: string;
  calls(): HostCalls;
}

/** The idle-hook host import, module "wasmq". */
export function idleImports(ctx: ImportContext): Record<string, (...args: number[]) => number | void> {
  return {
    hook_idle(hook) {
      ctx.calls().charge("hook_idle");
      declareIdleHook(ctx.calls(), ctx.plugin, hook);
    },
  };
}
