/**
 * `node:buffer` for host/ modules bundled into the page (esbuild aliases it
 * here): the `buffer` package's Buffer, and isUtf8 with the same meaning as
 * Node's (well-formed UTF-8, no replacement).
 */
export { Buffer } from "buffer";

const strict = new TextDecoder("utf-8", { fatal: true });

export function isUtf8(bytes: ArrayBufferView | ArrayBuffer): boolean {
  try {
    strict.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
