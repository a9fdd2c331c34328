// Client secrets (the CONNECT password, MQTT 5 authentication data) are read
// once, by the connect hook or an AUTH step, and must not outlive that: aedes
// and mqtt-packet keep the CONNECT packet reachable for a while and its
// Buffers are slices of the socket's read chunk, so dropping the reference is
// not enough — a heap or core dump would still show the bytes. Zeroing the
// Buffer in place clears the read chunk too.

/** Overwrite a secret's bytes with zeros (no-op for null/undefined/non-binary values). */
export function scrubSecret(secret: unknown): void {
  if (secret instanceof Uint8Array) secret.fill(0);
}
