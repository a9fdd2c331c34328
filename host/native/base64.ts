// Standard base64 for native plugins. Twin of plugins-as/sdk/base64.ts: the
// same strict decoding (padding optional, nothing but the alphabet, leftover
// bits zero), which Buffer's lenient decoder does not give.
const STRICT = /^[A-Za-z0-9+/]*={0,2}$/;

export const base64 = {
  /** Encode with padding. */
  encode(bytes: Uint8Array): string {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  },
  /** Decode strictly; null when `s` is not base64. */
  decode(s: string): Uint8Array | null {
    if (!STRICT.test(s)) return null;
    const n = s.replace(/=+$/, "").length;
    if (n % 4 === 1 || (s.length % 4 !== 0 && s.length !== n)) return null;
    const out = Buffer.from(s, "base64");
    // one spelling per value: re-encoding must give the same characters
    if (out.toString("base64").replace(/=+$/, "") !== s.slice(0, n)) return null;
    return new Uint8Array(out);
  },
};
