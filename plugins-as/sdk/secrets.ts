// The client's password is valid for the hook call that reads it. msg.password
// hands out a copy in the plugin's heap; the garbage collector frees it without
// clearing it, so the bytes would sit in linear memory (and in a heap or core
// dump of the broker) long after CONNECT. The host calls wasmq_scrub
// (exports.ts) after every connect and auth call; it zeroes each copy handed
// out since. Mirrors host/native, where the password Buffer itself is zeroed
// after the connect hook.

const handedOut: Uint8Array[] = [];

/**
 * Remember a copy of a secret so wasmq_scrub can zero it; returns it. Only
 * connect and auth records carry a password (and are followed by wasmq_scrub);
 * elsewhere it is empty and not tracked, so the list cannot grow.
 */
export function handOutSecret(copy: Uint8Array): Uint8Array {
  if (copy.length > 0) handedOut.push(copy);
  return copy;
}

/** Zero every secret handed out since the last call, and forget them. */
export function scrubSecrets(): void {
  for (let i = 0; i < handedOut.length; i++) {
    const b = unchecked(handedOut[i]);
    memory.fill(b.dataStart, 0, <usize>b.byteLength);
  }
  handedOut.length = 0;
}
