/**
 * What the playground runs, split from the page so the Wasm host, the `buffer`
 * package and @noble/hashes load only when the playground is used.
 */
export { parseMessages } from "../../../../../host/harness-core.js";
export { createPlayground, type PlaygroundResult } from "../../../../../host/playground.js";
export { BROWSER_CRYPTO } from "../crypto.js";
