/** The SDK's crypto imports in the browser, from @noble/hashes (synchronous, as host imports must be). */
import { hmac } from "@noble/hashes/hmac.js";
import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { HostCrypto } from "../../../../host/wasm-env.js";

export const BROWSER_CRYPTO: HostCrypto = {
  sha256: (data) => sha256(data),
  hmacSha256: (key, data) => hmac(sha256, key, data),
  pbkdf2Sha256: (password, salt, iterations, keyLength) => pbkdf2(sha256, password, salt, { c: iterations, dkLen: keyLength }),
};
