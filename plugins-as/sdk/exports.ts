// The ABI entry points every plugin exports. A plugin re-exports them with
//   export * from "../sdk/exports";
import { ABI_VERSION, Feature } from "./abi";
import { scrubSecrets } from "./secrets";

export function wasmq_abi_version(): i32 {
  return ABI_VERSION;
}

/**
 * The SDK's Message fetches a large payload from the host the first time the
 * plugin reads it (payloadPtr), so plugins that never read it never copy it.
 */
export function wasmq_features(): i32 {
  return Feature.deferredPayload;
}

let inputPtr: usize = 0;
let inputCap: usize = 0;

/**
 * The input region the host writes each message record into. It lives outside
 * the garbage collector's reach (heap.alloc), so the address stays valid between
 * calls; the host asks again only when a record does not fit.
 */
export function wasmq_reserve(size: i32): usize {
  if (<usize>size > inputCap) {
    if (inputPtr) heap.free(inputPtr);
    inputPtr = heap.alloc(<usize>size);
    inputCap = <usize>size;
  }
  return inputPtr;
}

/** Called by the host after connect and auth calls: zero the password copies msg.password handed out (secrets.ts). */
export function wasmq_scrub(): void {
  scrubSecrets();
}
