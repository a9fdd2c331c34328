// Authentication cannot be switched off by accident: on a broker with a public
// listener and no allowAnonymous, reloading the only authentication plugin as
// a build without onConnect is refused (admin API, SIGHUP and file watch all
// reload through the chain) and the old build keeps guarding CONNECT.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildSource } from "./fixtures.js";
import { connect, connectRefused, end, scratchDir, startTestBroker, type TestBroker } from "./helpers.js";

const TOKEN = "exposure-token-0123456789";

const GATE = `
  import { Config, Message, Verdict, ReturnCode, deny } from "SDK_PATH";
  export * from "SDK_PATH/exports";
  export function init(config: Config): bool { return true; }
  export function onConnect(msg: Message): i32 {
    return msg.usernameEquals("alice") ? Verdict.Continue : deny(ReturnCode.BadUsernameOrPassword);
  }
`;
// The same plugin after an edit that lost its connect hook.
const NO_GATE = `
  import { Config, Message, Verdict } from "SDK_PATH";
  export * from "SDK_PATH/exports";
  export function init(config: Config): bool { return true; }
  export function onPublish(msg: Message): i32 { return Verdict.Continue; }
`;

async function reload(broker: TestBroker, name: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${broker.admin!.url}/plugins/${name}/reload`, { method: "POST", headers: { "x-wasmq-request": "1", authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("reloading away the only authentication", { timeout: 120_000 }, () => {
  let gate: string;
  let noGate: string;
  before(async () => {
    const dir = scratchDir();
    gate = await buildSource(GATE, join(dir, "gate.wasm"));
    noGate = await buildSource(NO_GATE, join(dir, "no-gate.wasm"));
  });

  async function brokerWith(extra: Record<string, unknown>, plugins: { name: string; file: string }[]): Promise<TestBroker> {
    return startTestBroker({
      persistence: "memory",
      ws: false,
      metrics: { port: 0, token: TOKEN },
      plugins: plugins.map((p) => ({ name: p.name, wasm: p.file, watch: false })),
      ...extra,
    });
  }

  describe("a public broker without allowAnonymous", () => {
    let broker: TestBroker;
    let file: string;
    before(async () => {
      file = join(scratchDir(), "auth.wasm");
      copyFileSync(gate, file);
      broker = await brokerWith({ host: "0.0.0.0" }, [{ name: "auth", file }]);
    });
    after(() => broker.stop());

    test("the admin API's reload of a build without onConnect is refused (422) and CONNECT stays guarded", async () => {
      copyFileSync(noGate, file);
      const refused = await reload(broker, "auth");
      assert.equal(refused.status, 422);
      assert.match(String(refused.body.error), /plugin auth is the only authentication and the broker listens on 0\.0\.0\.0: this build has no onConnect hook/);
      assert.ok(broker.chain.slot("auth")!.hooks.has("connect"), "the old build keeps running");
      assert.equal(await connectRefused(broker.url, { username: "mallory" }), 4);
      const alice = await connect(broker.url, { username: "alice" });
      await end(alice);
    });

    test("SIGHUP and the file watcher reload through the chain: refused the same way", async () => {
      copyFileSync(noGate, file);
      const [result] = await broker.chain.reload();
      assert.equal(result!.ok, false);
      assert.match(String(result!.error), /only authentication/);
      assert.equal(await connectRefused(broker.url, { username: "mallory" }), 4);
    });

    test("an upload of a build without onConnect is refused, its dry run too, and CONNECT stays guarded", async () => {
      for (const query of ["?dryRun=true", ""]) {
        const res = await fetch(`${broker.admin!.url}/plugins/auth/upload${query}`, {
          method: "POST",
          headers: { "x-wasmq-request": "1", authorization: `Bearer ${TOKEN}`, "content-type": "application/wasm" },
          body: readFileSync(noGate) as unknown as BodyInit,
        });
        const body = (await res.json()) as Record<string, unknown>;
        assert.equal(res.status, 422, `${query}: ${JSON.stringify(body)}`);
        assert.match(String(body.error), /only authentication/);
      }
      assert.ok(broker.chain.slot("auth")!.hooks.has("connect"), "the old build keeps running");
      assert.equal(await connectRefused(broker.url, { username: "mallory" }), 4);
    });

    test("a build that keeps onConnect reloads as usual", async () => {
      copyFileSync(gate, file);
      const ok = await reload(broker, "auth");
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    });
  });

  test("with another authentication plugin, allowAnonymous, or loopback only, the same reload goes through", async () => {
    const cases: { extra: Record<string, unknown>; second: boolean }[] = [
      { extra: { host: "0.0.0.0" }, second: true },
      { extra: { host: "0.0.0.0", allowAnonymous: true }, second: false },
      { extra: { host: "127.0.0.1" }, second: false },
    ];
    for (const { extra, second } of cases) {
      const file = join(scratchDir(), "auth.wasm");
      copyFileSync(gate, file);
      const broker = await brokerWith(extra, [{ name: "auth", file }, ...(second ? [{ name: "auth2", file: gate }] : [])]);
      try {
        copyFileSync(noGate, file);
        const r = await reload(broker, "auth");
        assert.equal(r.status, 200, `${JSON.stringify(extra)} second=${second}: ${JSON.stringify(r.body)}`);
        assert.equal(broker.chain.slot("auth")!.hooks.has("connect"), false);
      } finally {
        await broker.stop();
      }
    }
  });
});
