// The scram plugin without a broker (host/harness.js): the RFC 7677 test
// vector, generated exchanges run through the Wasm build and the native twin
// with the same seeded random source (identical answers, step by step), and
// config refusals. The broker side is in mqtt5-auth.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { readFileSync } from "node:fs";
import { createHarness, type Harness, type HarnessMessage, type HarnessResult } from "../host/harness.js";
import { createPlayground } from "../host/playground.js";
import { NODE_WASM_ENV } from "../host/wasm-node.js";
import { wasm } from "./helpers.js";
import { deriveCredentials } from "../plugins-as/scram/native.js";
import { assertTwinsRefuse, randomWord, Rng, twinSpecs } from "./differential.js";
import { ScramClient } from "./scram-client.js";

const METHOD = "SCRAM-SHA-256";

/** A seeded stand-in for the CSPRNG, so both builds draw the same nonces. */
function seeded(seed: number): (n: number) => Uint8Array {
  const rng = new Rng(seed);
  return (n) => new Uint8Array(rng.bytes(n));
}

async function twins(config: Record<string, unknown>, seed: number): Promise<[Harness, Harness]> {
  const specs = twinSpecs("scram", config);
  return [await createHarness(specs.wasm, { random: seeded(seed) }), await createHarness(specs.native, { random: seeded(seed) })];
}

function step(clientId: string, flags: number, data: string | Buffer, extra: Partial<HarnessMessage> = {}): HarnessMessage {
  return { hook: "auth", clientId, topic: METHOD, payload: typeof data === "string" ? data : { base64: data.toString("base64") }, flags, ...extra };
}

/** Both builds answer the step the same; returns the Wasm build's answer. */
function both(pair: [Harness, Harness], message: HarnessMessage, index: number): HarnessResult {
  const [a, b] = pair.map((h) => h.run(message, index)) as [HarnessResult, HarnessResult];
  assert.deepEqual(a, b, `step ${index} ${JSON.stringify(message).slice(0, 200)}: the twins differ`);
  return a;
}

describe("scram plugin", { timeout: 120_000 }, () => {
  test("RFC 7677 section 3 test vector: the client-final-message is accepted and the server-final-message is the RFC's (Wasm and native)", async () => {
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
    const config = { users: [deriveCredentials("user", "pencil", 4096, salt)] };
    const bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    const serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const clientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const pair = await twins(config, 1);
    try {
      // the state the first step would have kept, with the RFC's server nonce
      const r = both(pair, step("rfc", 1, clientFinal, { authState: `n,,\n${bare}\n${serverFirst}` }), 0);
      assert.equal(r.auth?.result, "success");
      assert.equal(r.auth?.data, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
      assert.equal(r.auth?.identity, "user", "the SCRAM user is the authenticated identity (ABI v2-r4)");
      // one bit of the proof changed: refused with 0x86
      const bad = both(pair, step("rfc", 1, clientFinal.replace("p=dH", "p=dG"), { authState: `n,,\n${bare}\n${serverFirst}` }), 1);
      assert.deepEqual(bad.auth, { result: "failure", reasonCode: 0x86 });
    } finally {
      for (const h of pair) h.close();
    }
  });

  test("the dashboard's playground runs the auth hook too (RFC 7677 final step: the same answer as the harness)", async () => {
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
    const config = { users: [deriveCredentials("user", "pencil", 4096, salt)] };
    const playground = await createPlayground(readFileSync(wasm("scram")), { name: "scram", config, fuel: 100_000_000, env: NODE_WASM_ENV });
    try {
      const state = "n,,\nn=user,r=rOprNGfwEbeRWgbNEkqO\nr=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
      const r = playground.run(step("p", 1, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", { authState: state }), 0);
      assert.deepEqual(r.auth, { result: "success", data: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", state: "", identity: "user" });
      assert.ok((r.fuel ?? 0) > 0, "metered");
      assert.deepEqual(playground.run({ ...step("p", 0, "n,,n=user,r=x"), topic: "OTHER" }, 1).auth, { result: "failure", reasonCode: 0x8c });
    } finally {
      playground.close();
    }
  });

  test("generated exchanges: the Wasm build and the native twin answer every step identically (seeded nonces)", async () => {
    const users = [deriveCredentials("alice", "wonderland"), deriveCredentials("b=o,b", "builder", 4100), deriveCredentials("温度", "ü")];
    const passwords = new Map([["alice", "wonderland"], ["b=o,b", "builder"], ["温度", "ü"]]);
    const pair = await twins({ users }, 7);
    const rng = new Rng(12);
    const counts: Record<string, number> = {};
    try {
      let index = 0;
      for (let round = 0; round < 120; round++) {
        const client = `c${round}`;
        const known = rng.chance(0.7);
        const user = known ? rng.pick([...passwords.keys()]) : randomWord(rng) || "nobody";
        const password = known && rng.chance(0.7) ? passwords.get(user)! : randomWord(rng);
        const scram = new ScramClient(user, password);
        // sometimes a malformed client-first-message
        const first = rng.chance(0.15) ? rng.pick(["", "p=tls-unique,,n=a,r=b", "n,a=x,n=a,r=b", "n,,m=ext,n=a,r=b", "n,,n=a", "n,,n=a=,r=b", randomWord(rng)]) : scram.clientFirst().toString();
        // sometimes the CONNECT carries a User Name: the SCRAM user's, or another
        const username = rng.chance(0.2) ? (rng.chance(0.5) ? user : randomWord(rng)) : undefined;
        const start = both(pair, step(client, rng.chance(0.2) ? 2 : 0, first, username === undefined ? {} : { username }), index++);
        counts[`first:${start.auth?.result}`] = (counts[`first:${start.auth?.result}`] ?? 0) + 1;
        if (start.auth?.result !== "continue") continue;
        let final = scram.clientFinal(start.auth.data!);
        if (rng.chance(0.15)) final = Buffer.from(rng.pick([final.toString().replace("c=biws", "c=eSws"), final.toString().replace(",r=", ",r=x"), final.toString().split(",p=")[0]!, final.toString() + "A", randomWord(rng)]));
        const end = both(pair, step(client, 1, final), index++);
        const key = `final:${end.auth?.result}${end.auth?.reasonCode ? `:${end.auth.reasonCode.toString(16)}` : ""}`;
        counts[key] = (counts[key] ?? 0) + 1;
        if (end.auth?.result === "success") {
          assert.ok(known && password === passwords.get(user), `${user}/${password} must not authenticate`);
          // the identity is the SCRAM user; a CONNECT User Name that differs is refused by the broker (mqtt5-auth-identity)
          assert.equal(end.auth.identity, user, "the SCRAM user is the authenticated identity");
          assert.ok(scram.verifyServerFinal(end.auth.data!), "server-final-message verifies");
        }
      }
      // the generator reached every outcome
      for (const k of ["first:continue", "first:failure", "final:success", "final:failure:86", "final:failure:87"]) assert.ok((counts[k] ?? 0) > 0, `${k} never happened: ${JSON.stringify(counts)}`);
    } finally {
      for (const h of pair) h.close();
    }
  });

  test("SCRAM-SHA-256-PLUS through the harness: both builds accept the proof bound to the connection's tls-exporter, and refuse another value or none, identically", async () => {
    const pair = await twins({ users: [deriveCredentials("alice", "wonderland")] }, 9);
    const exporter = Buffer.alloc(32, 7);
    const plus = (clientId: string, flags: number, data: string | Buffer, tlsExporter: Buffer | null) =>
      step(clientId, flags, data, { topic: "SCRAM-SHA-256-PLUS", ...(tlsExporter ? { tlsExporter: { base64: tlsExporter.toString("base64") } } : {}) });
    try {
      let index = 0;
      for (const [bound, expect] of [[exporter, "success"], [Buffer.alloc(32, 8), "failure"]] as const) {
        const scram = new ScramClient("alice", "wonderland", { gs2: "p=tls-exporter,,", data: () => bound });
        const start = both(pair, plus(`p${index}`, 0, scram.clientFirst(), exporter), index++);
        assert.equal(start.auth?.result, "continue");
        const end = both(pair, plus(`p${index - 1}`, 1, scram.clientFinal(start.auth!.data!), exporter), index++);
        assert.equal(end.auth?.result, expect);
        if (expect === "success") assert.equal(end.auth?.identity, "alice");
        else assert.equal(end.auth?.reasonCode, 0x87);
      }
      // no binding on the connection (not TLS 1.3): refused at the first step
      const scram = new ScramClient("alice", "wonderland", { gs2: "p=tls-exporter,,", data: () => exporter });
      assert.deepEqual(both(pair, plus("none", 0, scram.clientFirst(), null), index++).auth, { result: "failure", reasonCode: 0x87 });
      // "y" where the binding exists and PLUS is offered: a downgrade; "n" is fine
      const y = new ScramClient("alice", "wonderland", { gs2: "y,," });
      assert.deepEqual(both(pair, step("y", 0, y.clientFirst(), { tlsExporter: { base64: exporter.toString("base64") } }), index++).auth?.result, "failure");
      const n = new ScramClient("alice", "wonderland");
      assert.equal(both(pair, step("n", 0, n.clientFirst(), { tlsExporter: { base64: exporter.toString("base64") } }), index++).auth?.result, "continue");
    } finally {
      for (const h of pair) h.close();
    }
  });

  test("connect hook: with required (default) only clients flagged as enhanced-authenticated pass; with required false all do (both builds)", async () => {
    const users = [deriveCredentials("alice", "wonderland")];
    for (const [config, expect] of [[{ users }, ["deny", "continue", "deny", "continue"]], [{ users, required: false }, ["continue", "continue", "continue", "continue"]]] as const) {
      const pair = await twins(config, 5);
      try {
        const verdicts = [0, 2, 1, 3].map((flags, i) => both(pair, { hook: "connect", clientId: `k${i}`, username: "alice", flags, protocolVersion: i % 2 ? 5 : 4 }, i).verdict);
        assert.deepEqual(verdicts, expect);
      } finally {
        for (const h of pair) h.close();
      }
    }
  });

  test("a continue step with no exchange in progress, and another method, are refused with 0x87", async () => {
    const pair = await twins({ users: [deriveCredentials("alice", "wonderland")] }, 3);
    try {
      assert.deepEqual(both(pair, step("none", 1, "c=biws,r=x,p=AAAA"), 0).auth, { result: "failure", reasonCode: 0x87 });
      assert.deepEqual(both(pair, { ...step("m", 0, "n,,n=alice,r=x"), topic: "SCRAM-SHA-1" }, 1).auth, { result: "failure", reasonCode: 0x8c }, "the harness finds no plugin for SCRAM-SHA-1");
    } finally {
      for (const h of pair) h.close();
    }
  });

  test("configs are refused with the key named, the same by both builds", async () => {
    const good = deriveCredentials("alice", "wonderland");
    await assertTwinsRefuse("scram", { users: [{ ...good, storedKey: "AAAA" }] }, /users\.0\.storedKey and \.serverKey must be base64 of 32 bytes/);
    await assertTwinsRefuse("scram", { users: [{ ...good, salt: "not base64!" }] }, /users\.0\.salt must be base64/);
    await assertTwinsRefuse("scram", { users: [{ ...good, iterations: 100 }] }, /users\.0\.iterations must be an integer from 4096/);
    await assertTwinsRefuse("scram", { users: [{ ...good, username: "" }] }, /users\.0\.username must be a non-empty string/);
  });
});
