// Hashing for native plugins with node:crypto. Twin of plugins-as/sdk/crypto.ts
// (where the host does the same work and charges fuel for it).
import { createHash, createHmac, pbkdf2Sync, timingSafeEqual as nodeTimingSafeEqual } from "node:crypto";
import { PBKDF2_MAX_ITERATIONS, PBKDF2_MAX_KEY } from "../abi.js";
import { randomBytes } from "../auth-calls.js";
import { activeCall } from "./context.js";

export const crypto = {
  /** SHA-256 digest (32 bytes). */
  sha256(data: Uint8Array): Uint8Array {
    return createHash("sha256").update(data).digest();
  },
  /** HMAC-SHA256 of data under key (32 bytes). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    return createHmac("sha256", key).update(data).digest();
  },
  /** PBKDF2-HMAC-SHA256, keyLength bytes; null unless 1 ≤ iterations ≤ 10,000,000 and 1 ≤ keyLength ≤ 1024. */
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, keyLength: number): Uint8Array | null {
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > PBKDF2_MAX_ITERATIONS) return null;
    if (!Number.isInteger(keyLength) || keyLength < 1 || keyLength > PBKDF2_MAX_KEY) return null;
    return pbkdf2Sync(password, salt, iterations, keyLength, "sha256");
  },
  /** n bytes (1..1024) from the host's CSPRNG (pinned by the harness), null otherwise. */
  randomBytes(n: number): Uint8Array | null {
    return randomBytes(activeCall().services, n);
  },
  /** Equal bytes, compared without an early exit so the time taken does not reveal where they differ. */
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
    return a.length === b.length && nodeTimingSafeEqual(a, b);
  },
};
