/** The Wasm host's environment in Node: node:crypto, and fuel instrumentation in a child process. */
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { instrumentFuelInChild } from "./fuel-offload.js";
import type { WasmHostEnv } from "./wasm-env.js";

export const NODE_WASM_ENV: WasmHostEnv = {
  crypto: {
    sha256: (data) => createHash("sha256").update(data).digest(),
    hmacSha256: (key, data) => createHmac("sha256", key).update(data).digest(),
    pbkdf2Sha256: (password, salt, iterations, keyLength) => pbkdf2Sync(password, salt, iterations, keyLength, "sha256"),
  },
  instrument: async (bytes) => (await instrumentFuelInChild(bytes)).binary,
};
