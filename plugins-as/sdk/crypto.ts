// Hashing the host does for the plugin with node:crypto (OpenSSL): ~2.5× the
// speed of SHA-256 written in AssemblyScript, and no code of its own to get
// wrong. The host charges fuel for the work before doing it (host/abi.ts,
// CRYPTO_FUEL_PER_BLOCK), so it cannot be used to escape the CPU budget.
// Mirrors `crypto` in host/native/crypto.ts.
import { MAX_RANDOM_BYTES, PBKDF2_MAX_KEY } from "./abi";
import { hmac_sha256, pbkdf2_sha256, random_bytes, sha256_ } from "./imports";

export namespace crypto {
  /** SHA-256 digest (32 bytes). */
  export function sha256(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    sha256_(data.dataStart, data.length, out.dataStart);
    return out;
  }

  /** HMAC-SHA256 of data under key (32 bytes). */
  export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    hmac_sha256(key.dataStart, key.length, data.dataStart, data.length, out.dataStart);
    return out;
  }

  /** PBKDF2-HMAC-SHA256, keyLength bytes; null unless 1 ≤ iterations ≤ 10,000,000 and 1 ≤ keyLength ≤ 1024. */
  export function pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: i32, keyLength: i32): Uint8Array | null {
    if (keyLength < 1 || keyLength > PBKDF2_MAX_KEY) return null; // the host checks iterations
    const out = new Uint8Array(keyLength);
    if (pbkdf2_sha256(password.dataStart, password.length, salt.dataStart, salt.length, iterations, out.dataStart, keyLength) != 0) return null;
    return out;
  }

  /** n bytes (1..1024) from the host's CSPRNG, null otherwise. */
  export function randomBytes(n: i32): Uint8Array | null {
    if (n < 1 || n > MAX_RANDOM_BYTES) return null;
    const out = new Uint8Array(n);
    if (random_bytes(out.dataStart, n) != 0) return null;
    return out;
  }

  /** Equal bytes, compared without an early exit so the time taken does not reveal where they differ. */
  export function timingSafeEqual(a: Uint8Array, b: Uint8Array): bool {
    if (a.length != b.length) return false;
    let diff: u32 = 0;
    for (let i = 0; i < a.length; i++) diff |= <u32>(unchecked(a[i]) ^ unchecked(b[i]));
    return diff == 0;
  }
}
