// Builds for the signature and trust tests: a small plugin in two versions,
// signed, tampered, stripped and signed by a stranger.
import { createPrivateKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSigningKeys, signModule, SIGNATURE_SECTION } from "../host/signing.js";
import { listSections, withoutCustomSections } from "../host/wasm-binary.js";
import { buildSource } from "./fixtures.js";

/** v1 drops `blocked/#`; v2 passes everything. */
export const gate = (drops: boolean) => `
  import { Message, Verdict } from "SDK_PATH";
  export * from "SDK_PATH/exports";
  const BLOCKED = "blocked/#";
  export function onPublish(msg: Message): i32 {
    return ${drops} && msg.topicMatches(BLOCKED) ? Verdict.Drop : Verdict.Continue;
  }`;

export interface KeyFiles {
  key: string;
  pub: string;
  pem: string;
}

export function writeKeys(dir: string, name: string): KeyFiles {
  const k = generateSigningKeys();
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  writeFileSync(key, k.privatePem, { mode: 0o600 });
  writeFileSync(pub, k.publicPem);
  return { key, pub, pem: k.privatePem };
}

export function signWith(bytes: Uint8Array, keys: KeyFiles): Buffer {
  return Buffer.from(signModule(bytes, createPrivateKey(keys.pem)));
}

/**
 * The module with one byte of a data segment changed: still a valid module
 * that would compile and run, so only the signature can notice.
 */
export function tamper(bytes: Uint8Array): Buffer {
  const data = listSections(bytes).find((s) => s.id === 11);
  if (!data) throw new Error("the test plugin has no data section to tamper with");
  const out = Buffer.from(bytes);
  out[data.end - 1] ^= 0x20;
  return out;
}

export function strip(bytes: Uint8Array): Buffer {
  return Buffer.from(withoutCustomSections(bytes, SIGNATURE_SECTION));
}

export interface TrustBuilds {
  trusted: KeyFiles;
  stranger: KeyFiles;
  v1: Buffer;
  v2: Buffer;
  /** v1 and v2 signed by the trusted key. */
  signedV1: Buffer;
  signedV2: Buffer;
  /** Each refused under `require`, with the reason it is refused. */
  bad: { what: string; bytes: Buffer; reason: RegExp }[];
}

export async function trustBuilds(dir: string): Promise<TrustBuilds> {
  const v1 = readFileSync(await buildSource(gate(true), join(dir, "v1.wasm")));
  const v2 = readFileSync(await buildSource(gate(false), join(dir, "v2.wasm")));
  const trusted = writeKeys(dir, "release");
  const stranger = writeKeys(dir, "stranger");
  const signedV2 = signWith(v2, trusted);
  return {
    trusted,
    stranger,
    v1,
    v2,
    signedV1: signWith(v1, trusted),
    signedV2,
    bad: [
      { what: "a tampered byte", bytes: tamper(signedV2), reason: /invalid signature: .*does not match the module's content/ },
      { what: "the wrong key", bytes: signWith(v2, stranger), reason: /signed by key [0-9a-f]{16}, which is not one of trust\.keys/ },
      { what: "a stripped signature", bytes: strip(signedV2), reason: /not signed, and trust\.require is on/ },
    ],
  };
}
