/** Node's Buffer for host/ modules running in the page (esbuild injects this where `Buffer` is used). */
export { Buffer } from "buffer";
