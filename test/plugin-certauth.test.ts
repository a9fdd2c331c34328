// certauth: allow CONNECTs by client-certificate fingerprint or CN. The Wasm
// build and its native twin must agree on every generated certificate; the
// SDKs' msg.certificate() must hand both the same fields; and a plugin built
// with the SDK from before client_cert existed must load and behave as before.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { runPlugin, type HarnessMessage } from "../host/harness.js";
import type { ClientCertificate } from "../host/message.js";
import { inspectModule } from "../host/wasm-binary.js";
import { compilePlugin } from "../host/tools/asc.js";
import { Rng, assertTwinsAgree, assertTwinsRefuse, randomIdentity, randomWord, verdictCounts } from "./differential.js";
import { assertExampleConfigLoads } from "./differential-state.js";
import { buildSource } from "./fixtures.js";
import { ROOT, tempDir, wasm } from "./helpers.js";

const dir = tempDir("wasmq-certauth-");
after(() => rmSync(dir, { recursive: true, force: true }));

function fingerprintOf(seed: string): string {
  return createHash("sha256").update(seed).digest("hex");
}

/** OpenSSL's spelling of a fingerprint: uppercase pairs joined by ':'. */
function opensslSpelling(hex: string): string {
  return hex.toUpperCase().match(/../g)!.join(":");
}

function certificate(rng: Rng, fingerprint: string, cn: string): ClientCertificate {
  return {
    subject: `CN=${cn},O=${randomWord(rng)}`,
    subjectCommonName: cn,
    issuer: "CN=Fleet CA,O=Acme",
    issuerCommonName: "Fleet CA",
    subjectAltNames: rng.chance(0.5) ? [`DNS:${randomWord(rng)}.example`, "URI:urn:x"] : [],
    notBefore: 1_700_000_000_000 + rng.int(1e9),
    notAfter: 1_800_000_000_000 + rng.int(1e9),
    fingerprint,
    serialNumber: rng.int(1e9).toString(16).toUpperCase(),
  };
}

describe("certauth: Wasm and native twin agree", () => {
  const allowed = [fingerprintOf("dev-1"), fingerprintOf("dev-2")];
  const names = ["gateway-7", "ü-dev", "a,b"];
  const config = { fingerprints: [opensslSpelling(allowed[0]!), allowed[1]!], commonNames: names };

  function messages(seed: number, count: number): HarnessMessage[] {
    const r = new Rng(seed);
    const out: HarnessMessage[] = [];
    for (let i = 0; i < count; i++) {
      const fp = r.chance(0.4) ? r.pick(allowed) : fingerprintOf(`other-${r.int(1000)}`);
      const cn = r.chance(0.3) ? r.pick(names) : randomIdentity(r, names);
      const cert = r.chance(0.15) ? null : certificate(r, fp, cn);
      out.push({ hook: "connect", clientId: randomIdentity(r), username: r.chance(0.5) ? randomIdentity(r) : null, ...(cert ? { cert } : {}) });
    }
    return out;
  }

  test("600 generated CONNECTs: same verdicts, codes and log lines; every outcome exercised", async () => {
    const results = await assertTwinsAgree("certauth", config, messages(0xce47, 600));
    const counts = verdictCounts(results);
    assert.ok((counts.continue ?? 0) > 50, JSON.stringify(counts));
    assert.ok((counts["deny:5"] ?? 0) > 50, JSON.stringify(counts));
  });

  test("one fingerprint only: that certificate passes, another with the same CN does not, none at all does not", async () => {
    const rng = new Rng(1);
    const only = { fingerprints: [opensslSpelling(allowed[0]!)] };
    const results = await assertTwinsAgree("certauth", only, [
      { hook: "connect", cert: certificate(rng, allowed[0]!, "dev-1") },
      { hook: "connect", cert: certificate(rng, fingerprintOf("dev-1-reissued"), "dev-1") },
      { hook: "connect" },
    ]);
    assert.deepEqual(results.map((r) => [r.verdict, r.returnCode]), [["continue", undefined], ["deny", 5], ["deny", 5]]);
  });

  test("requireCertificate: false lets clients without a certificate through to the next plugin", async () => {
    const results = await assertTwinsAgree("certauth", { commonNames: ["x"], requireCertificate: false }, [{ hook: "connect" }]);
    assert.equal(results[0]!.verdict, "continue");
  });

  test("bad configs are refused, naming the entry", async () => {
    await assertTwinsRefuse("certauth", {}, /at least one entry/);
    await assertTwinsRefuse("certauth", { fingerprints: ["abc"] }, /fingerprints\.0 is not a SHA-256 fingerprint/);
    await assertTwinsRefuse("certauth", { fingerprints: [fingerprintOf("a"), "zz".repeat(32)] }, /fingerprints\.1 /);
    await assertTwinsRefuse("certauth", { fingerprints: "abc" }, /must be an array/);
    await assertTwinsRefuse("certauth", { commonNames: [""] }, /commonNames\.0 must be a non-empty string/);
  });
});

describe("msg.certificate(): both SDKs hand a plugin the same fields", () => {
  // Logs every field; the native twin below logs the same line.
  const wasmSource = `
import { Message, Verdict, log } from "SDK_PATH";
export * from "SDK_PATH/exports";
export function onConnect(msg: Message): i32 {
  const c = msg.certificate();
  if (c === null) { log.info("none " + (msg.hasCertificate ? "yes" : "no")); return Verdict.Continue; }
  log.info([c.subject, c.subjectCommonName, c.issuer, c.issuerCommonName, c.subjectAltNames.join("|"), (<i64>c.notBefore).toString(), (<i64>c.notAfter).toString(), c.fingerprint, c.serialNumber, msg.hasCertificate ? "yes" : "no"].join(";"));
  return Verdict.Continue;
}
`;

  test("every field, including long and non-ASCII ones", async () => {
    const out = await buildSource(wasmSource, join(dir, "cert-fields.wasm"));
    const long = "L".repeat(300); // longer than the SDK's 256-byte scratch buffer
    const cert: ClientCertificate = {
      subject: `CN=Gerät 7 ✓,O=${long}`,
      subjectCommonName: "Gerät 7 ✓",
      issuer: "CN=Root,O=Acme",
      issuerCommonName: "Root",
      subjectAltNames: ["DNS:a.example", "IP Address:10.0.0.1", `URI:${long}`],
      notBefore: 1_735_689_600_000,
      notAfter: 1_767_225_599_000,
      fingerprint: fingerprintOf("x"),
      serialNumber: "0A1B2C",
    };
    const results = await runPlugin({ name: "fields", wasm: out }, [
      { hook: "connect", cert },
      { hook: "connect" },
    ]);
    const expected = [cert.subject, cert.subjectCommonName, cert.issuer, cert.issuerCommonName, cert.subjectAltNames.join("|"), String(cert.notBefore), String(cert.notAfter), cert.fingerprint, cert.serialNumber, "yes"].join(";");
    assert.deepEqual(results.map((r) => r.logs), [[`info: ${expected}`], ["info: none no"]]);
    // The native SDK reads the same message object the same way.
    const { Message } = await import("../host/native/index.js");
    const { CallState } = await import("../host/instance.js");
    const { emptyMessage } = await import("../host/message.js");
    const m = emptyMessage();
    m.cert = cert;
    const native = new Message().bind(m, new CallState()).certificate()!;
    assert.equal(
      [native.subject, native.subjectCommonName, native.issuer, native.issuerCommonName, native.subjectAltNames.join("|"), String(native.notBefore), String(native.notAfter), native.fingerprint, native.serialNumber, "yes"].join(";"),
      expected,
    );
  });

  test("reading the certificate costs fuel in proportion to the bytes copied", async () => {
    // Copies the SANs 100 times and does nothing else: the fuel it uses is the host's charge.
    const out = await buildSource(
      `
import { Message, Verdict } from "SDK_PATH";
import { client_cert } from "SDK_PATH/imports";
export * from "SDK_PATH/exports";
const buf = memory.data(8192, 16);
export function onConnect(msg: Message): i32 {
  for (let i = 0; i < 100; i++) client_cert(4, buf, 8192);
  return Verdict.Continue;
}
`,
      join(dir, "cert-fuel.wasm"),
    );
    const base: ClientCertificate = { subject: "CN=a", subjectCommonName: "a", issuer: "CN=b", issuerCommonName: "b", subjectAltNames: [], notBefore: 0, notAfter: 0, fingerprint: fingerprintOf("a"), serialNumber: "01" };
    const big = { ...base, subjectAltNames: Array.from({ length: 200 }, (_, i) => `DNS:host-${i}.example.com`) }; // ~5 KB
    const fuel = 1_000_000;
    const [small, large] = await Promise.all([
      runPlugin({ name: "fuel", wasm: out, limits: { fuel } }, [{ hook: "connect", cert: base }]),
      runPlugin({ name: "fuel", wasm: out, limits: { fuel } }, [{ hook: "connect", cert: big }]),
    ]);
    assert.equal(small[0]!.trap, undefined, "100 calls copying nothing fit the budget");
    assert.equal(large[0]!.trap, "fuel", "100 copies of 5 KB are charged past it");
  });
});

// The commit this work started from: its SDK has no client_cert.
const BEFORE_CLIENT_CERT = "0018ead9c0d0db14f36e0240e930e461e54b0c3d";

describe("ABI v1 stays compatible", () => {
  const hasCommit = spawnSync("git", ["-C", ROOT, "cat-file", "-e", `${BEFORE_CLIENT_CERT}^{commit}`]).status === 0;

  test("acl built with the SDK from before client_cert loads and decides exactly as the current build", { skip: !hasCommit && `commit ${BEFORE_CLIENT_CERT} is not in this clone` }, async () => {
    const src = join(dir, "old-tree");
    mkdirSync(src);
    const archive = spawnSync("sh", ["-c", `git -C '${ROOT}' archive ${BEFORE_CLIENT_CERT} plugins-as/sdk plugins-as/acl | tar -x -C '${src}'`]);
    assert.equal(archive.status, 0, archive.stderr?.toString());
    const oldWasm = join(dir, "acl-v1-old.wasm");
    const built = await compilePlugin(join(src, "plugins-as/acl/plugin.ts"), oldWasm);
    assert.ok(built.ok, built.output);
    const imports = inspectModule(readFileSync(oldWasm)).imports.map((i) => `${i.module}.${i.name}`);
    assert.ok(!imports.includes("wasmq.client_cert"));
    const config = JSON.parse(readFileSync(join(ROOT, "plugins-as/acl/config.example.json"), "utf8")) as Record<string, unknown>;
    const rng = new Rng(7);
    const messages: HarnessMessage[] = [];
    for (let i = 0; i < 300; i++) {
      messages.push({
        hook: rng.pick(["subscribe", "publish", "connect"] as const),
        topic: rng.pick(["public/x", "devices/c1/t", "devices/c2/secret", "other/y", "devices/c1/secret"]),
        clientId: rng.pick(["c1", "c2", "ops-1"]),
        username: rng.pick([null, "ops", "c1"]),
        ...(rng.chance(0.5) ? { cert: certificate(rng, fingerprintOf(String(i)), "c1") } : {}),
      });
    }
    const [before, now] = await Promise.all([
      runPlugin({ name: "acl", wasm: oldWasm, config }, messages),
      runPlugin({ name: "acl", wasm: wasm("acl"), config }, messages),
    ]);
    assert.deepEqual(before, now);
    assert.ok(before.some((r) => r.verdict !== "continue") && before.some((r) => r.verdict === "continue"));
  });
});

test("certauth: config.example.json is accepted by both twins", () => assertExampleConfigLoads("certauth"));
