/**
 * What the Wasm host needs from its environment, injected so that the ABI code
 * (wasm-plugin.ts) runs unchanged in Node (the broker, the harness) and in a
 * browser (the dashboard's playground): the SDK's crypto imports, and the fuel
 * instrumentation of a build. No node: imports here or in what takes this.
 */
export interface HostCrypto {
  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, keyLength: number): Uint8Array;
}

export interface WasmHostEnv {
  crypto: HostCrypto;
  /** Add fuel metering to a build (host/fuel.ts); the browser gets builds the broker metered already. */
  instrument(bytes: Uint8Array): Promise<Uint8Array>;
}
