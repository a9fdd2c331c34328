// Builds for the signature and trust tests: a small plugin in two versions,
// signed, tampered, stripped and signed by a stranger.
import { createPrivateKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSigningKeys, signModule, SIGNATURE_SECTION } from "../host/signing.js";
import { listSections, withoutCustomSections } from "../host/wasm-binary.js";
import { buildSource } from "./fixtures.js";
import { collect, connect, end, settle, subscribe } from "./helpers.js";

/** v1 drops `blocked/#`; v2 passes everything: which one runs is visible on the wire. With initOk false, init refuses. */
export const gate = (drops: boolean, initOk = true) => `
  import { ${initOk ? "" : "Config, "}Message, Verdict } from "SDK_PATH";
  export * from "SDK_PATH/exports";
  const BLOCKED = "blocked/#";${initOk ? "" : "\n  export function init(config: Config): bool { return false; }"}
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

/** Which gate build serves, as a client of the broker at `url` sees it: is `blocked/x` dropped (while `open/x` passes)? */
export async function blockedIsDropped(url: string): Promise<boolean> {
  const sub = await connect(url);
  const got = collect(sub);
  await subscribe(sub, ["blocked/#", "open/#"], 1);
  const pub = await connect(url);
  await pub.publishAsync("blocked/x", "b", { qos: 1 });
  await pub.publishAsync("open/x", "o", { qos: 1 });
  await got.waitFor(1);
  await settle(sub);
  await end(sub, pub);
  return !got.messages.some((m) => m.topic === "blocked/x");
}

/** POST a build to the admin API's /plugins/NAME/upload (QUERY such as "?dryRun=true"); its status and JSON answer. */
export async function uploadBuild(adminUrl: string, token: string, name: string, bytes: Uint8Array, query = "", type = "application/wasm") {
  const res = await fetch(`${adminUrl}/plugins/${name}/upload${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": type, "x-wasmq-request": "1" },
    body: Buffer.from(bytes) as unknown as BodyInit,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
