/**
 * Plugin signatures: Ed25519 over a module, embedded in the module itself so one
 * file travels.
 *
 * The signature lives in a custom section named `wasmq.signature`, which must be
 * the module's last section (a module with two, or with one that is not last,
 * is malformed). Its content is UTF-8 JSON:
 *   {"v":1,"alg":"ed25519","key":"<base64 of the 32-byte raw public key>","sig":"<base64 of 64 bytes>"}
 * The signed message is
 *   "wasmq-plugin-signature-v1\n" || SHA-256(module bytes without the signature section)
 * i.e. every byte of the module except the whole signature section (its id byte,
 * size, name and content) is covered — code, data, the `wasmq.manifest` section
 * and any other custom section. Re-signing replaces the section.
 * A key's id is the first 16 hex digits of SHA-256 of its 32-byte raw public key.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { customSections, encodeCustomSection, listSections, withoutCustomSections } from "./wasm-binary.js";

export const SIGNATURE_SECTION = "wasmq.signature";
const DOMAIN = Buffer.from("wasmq-plugin-signature-v1\n", "utf8");

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

export interface PublicKeyEntry {
  id: string;
  key: KeyObject;
  /** The 32-byte raw public key: what trust compares (not the shortened id). */
  raw: Buffer;
  /** Where it was read from (for messages). */
  source: string;
}

/** The 32-byte raw Ed25519 public key. */
function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  return Buffer.from(jwk.x!, "base64url");
}

export function keyId(key: KeyObject): string {
  return createHash("sha256").update(rawPublicKey(key)).digest("hex").slice(0, 16);
}

/** A new key pair as PEM text: PKCS#8 private key, SPKI public key. */
export function generateSigningKeys(): { privatePem: string; publicPem: string; id: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    id: keyId(publicKey),
  };
}

export function readPrivateKey(file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file));
  } catch (err) {
    throw new SignatureError(`${file} is not a private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new SignatureError(`${file} is a ${key.asymmetricKeyType} key; wasmq signs with Ed25519 (wasmq plugin keygen)`);
  return key;
}

export function readPublicKey(file: string): PublicKeyEntry {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    throw new SignatureError(`cannot read ${file}: ${(err as Error).message}`);
  }
  // createPublicKey would derive one from a private key: never let a secret key sit in a broker's config.
  if (text.includes("PRIVATE KEY")) throw new SignatureError(`${file} is a private key; give the public key (.pub) instead`);
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (err) {
    throw new SignatureError(`${file} is not a public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new SignatureError(`${file} is a ${key.asymmetricKeyType} key, not an Ed25519 public key`);
  return { id: keyId(key), key, raw: rawPublicKey(key), source: file };
}

/** Why a file cannot serve as a trusted public key, or null when it can. */
export function publicKeyProblem(file: string): string | null {
  try {
    readPublicKey(file);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** SHA-256 of every byte of the module except its signature section: what a signature covers. */
export function signedDigest(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(withoutCustomSections(bytes, SIGNATURE_SECTION)).digest();
}

/** The module with a fresh signature section appended (an existing one is replaced). */
export function signModule(bytes: Uint8Array, privateKey: KeyObject): Uint8Array {
  const unsigned = withoutCustomSections(bytes, SIGNATURE_SECTION);
  const digest = createHash("sha256").update(unsigned).digest();
  const sig = sign(null, Buffer.concat([DOMAIN, digest]), privateKey);
  const publicKey = createPublicKey(privateKey);
  const content = Buffer.from(JSON.stringify({ v: 1, alg: "ed25519", key: rawPublicKey(publicKey).toString("base64"), sig: sig.toString("base64") }), "utf8");
  return Buffer.concat([unsigned, encodeCustomSection(SIGNATURE_SECTION, content)]);
}

/**
 * What a module's signature says, before any trust decision:
 *   unsigned  — no signature section
 *   valid     — the signature matches the module under the embedded key (keyId)
 *   invalid   — malformed, misplaced, or does not match the module (tampered)
 */
export type SignatureState = "unsigned" | "valid" | "invalid";

export interface SignatureInfo {
  state: SignatureState;
  keyId: string | null;
  /** The embedded raw public key (valid signatures). */
  publicKey?: Buffer;
  /** Why it is invalid. */
  reason?: string;
}

function publicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
}

export function readSignature(bytes: Uint8Array): SignatureInfo {
  const sections = listSections(bytes);
  const found = sections.filter((s) => s.id === 0 && s.name === SIGNATURE_SECTION);
  if (found.length === 0) return { state: "unsigned", keyId: null };
  if (found.length > 1) return { state: "invalid", keyId: null, reason: `it has ${found.length} ${SIGNATURE_SECTION} sections` };
  if (sections[sections.length - 1] !== found[0]) return { state: "invalid", keyId: null, reason: `its ${SIGNATURE_SECTION} section is not the last section` };
  let parsed: { v?: unknown; alg?: unknown; key?: unknown; sig?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(customSections(bytes, SIGNATURE_SECTION)[0]!).toString("utf8"));
  } catch {
    return { state: "invalid", keyId: null, reason: `its ${SIGNATURE_SECTION} section is not JSON` };
  }
  if (parsed.v !== 1 || parsed.alg !== "ed25519" || typeof parsed.key !== "string" || typeof parsed.sig !== "string") {
    return { state: "invalid", keyId: null, reason: `its ${SIGNATURE_SECTION} section is not a v1 ed25519 signature` };
  }
  const raw = Buffer.from(parsed.key, "base64");
  const sig = Buffer.from(parsed.sig, "base64");
  if (raw.length !== 32 || sig.length !== 64) return { state: "invalid", keyId: null, reason: "its signature or key has the wrong length" };
  const key = publicKeyFromRaw(raw);
  const id = keyId(key);
  const ok = verify(null, Buffer.concat([DOMAIN, signedDigest(bytes)]), key, sig);
  return ok ? { state: "valid", keyId: id, publicKey: raw } : { state: "invalid", keyId: id, reason: `the signature by key ${id} does not match the module's content (modified after signing)` };
}

/** What the trust check decided, shown by the admin API and inspect. */
export interface TrustStatus {
  signature: SignatureState;
  keyId: string | null;
  /** The key is one of trust.keys. */
  trusted: boolean;
}

export interface TrustPolicy {
  keys: PublicKeyEntry[];
  /** Refuse builds not signed by one of `keys`. */
  require: boolean;
}

/**
 * Decide whether a build may run. Throws SignatureError with the reason:
 * a digest that differs from the pin, a present but invalid signature (always),
 * and — when the policy requires signatures — an unsigned build or one signed by
 * a key the policy does not list.
 */
export function checkTrust(bytes: Uint8Array, policy: TrustPolicy | undefined, pin?: string): TrustStatus {
  if (pin !== undefined) {
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== pin.toLowerCase()) throw new SignatureError(`its sha256 ${actual} does not match the pinned sha256 ${pin.toLowerCase()}`);
  }
  const info = readSignature(bytes);
  if (info.state === "invalid") throw new SignatureError(`invalid signature: ${info.reason}`);
  const raw = info.publicKey;
  const listed = raw !== undefined && (policy?.keys.some((k) => k.raw.equals(raw)) ?? false);
  if (policy?.require) {
    if (info.state === "unsigned") throw new SignatureError("it is not signed, and trust.require is on (sign it: wasmq plugin sign)");
    if (!listed) throw new SignatureError(`it is signed by key ${info.keyId}, which is not one of trust.keys`);
  }
  return { signature: info.state, keyId: info.keyId, trusted: listed };
}
