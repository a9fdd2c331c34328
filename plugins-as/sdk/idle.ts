// Idle hooks (ABI v2-r3, host/abi-idle.ts). In init, a plugin may declare that
// for its config a hook always answers Continue with no changes; the host then
// never calls it (and the broker skips the stage when no plugin needs it):
//
//   export function init(config: Config): bool {
//     ...
//     if (!hasDenyRules) declareIdle(Hook.deliver);
//     return true;
//   }
//
// Only subscribe, publish, deliver and persist may be idle; anywhere but init,
// or for another hook, the call traps (invalid-output). Mirrors host/native/idle.ts.
import { hook_idle } from "./imports";

/** Hook numbers (the host's HOOKS order). */
export namespace Hook {
  export const connect: i32 = 0;
  export const subscribe: i32 = 1;
  export const publish: i32 = 2;
  export const deliver: i32 = 3;
  export const persist: i32 = 4;
  export const tick: i32 = 5;
  export const auth: i32 = 6;
}

/** init only: for this config, `hook` always answers Continue unchanged, so the host need not call it. */
export function declareIdle(hook: i32): void {
  hook_idle(hook);
}
