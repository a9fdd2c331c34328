// The admin HTTP API (token, plugins, reload, enable/disable, clients, kick),
// its CLI (`wasmq admin ...`), and the config rule that a non-loopback admin
// address needs a token.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { ConfigError, parseRawConfig, resolveConfig } from "../broker/config.js";
import { buildFixture } from "./fixtures.js";
import { adminCli, CLI, collect, connect, end, freePort, settle, startTestBroker, subscribe, tempDir, type TestBroker } from "./helpers.js";

const TOKEN = "admin-token-0123456789";
const NATIVE_AUTH = fileURLToPath(new URL("./ops-native-auth.js", import.meta.url));

async function api(broker: TestBroker, method: string, path: string, token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { "x-wasmq-request": "1", ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(`${broker.admin!.url}${path}`, { method, headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("admin API", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  let pluginFile: string;
  before(async () => {
    // The plugin runs from a copy, so a test can break the file and reload.
    pluginFile = join(tempDir(), "probe.wasm");
    copyFileSync(await buildFixture("probe"), pluginFile);
    broker = await startTestBroker({
      persistence: "memory",
      metrics: { port: 0, token: TOKEN },
      plugins: [{ name: "probe", wasm: pluginFile, watch: false }],
    });
  });
  after(() => broker.stop());

  test("every request needs the token: none or a wrong one is 401", async () => {
    assert.equal((await api(broker, "GET", "/health", null)).status, 401);
    assert.equal((await api(broker, "GET", "/plugins", "wrong-token-0123456789")).status, 401);
    const metrics = await fetch(`${broker.admin!.url}/metrics`);
    assert.equal(metrics.status, 401);
    const ok = await api(broker, "GET", "/health");
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, "ok");
  });

  test("GET /plugins lists each plugin with its state and statistics; unknown names are 404", async () => {
    const { status, body } = await api(broker, "GET", "/plugins");
    assert.equal(status, 200);
    const [probe] = body.plugins as Record<string, unknown>[];
    assert.equal(probe!.name, "probe");
    assert.equal(probe!.kind, "wasm");
    assert.equal(probe!.enabled, true);
    assert.equal(probe!.breaker, "closed");
    assert.ok((probe!.hooks as string[]).includes("publish"));
    assert.ok(typeof (probe!.stats as { calls: Record<string, number> }).calls.publish === "number");
    assert.equal((await api(broker, "GET", "/plugins/probe")).body.name, "probe");
    const missing = await api(broker, "GET", "/plugins/nope");
    assert.equal(missing.status, 404);
    assert.match(String(missing.body.error), /no plugin named "nope"/);
    assert.equal((await api(broker, "POST", "/plugins/nope/reload")).status, 404);
  });

  test("disable and enable take effect on the next message", async () => {
    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, "drop/#", 1);
    const pub = await connect(broker.url);
    await pub.publishAsync("drop/1", "dropped by the plugin", { qos: 1 });
    const disabled = await api(broker, "POST", "/plugins/probe/disable");
    assert.deepEqual(disabled, { status: 200, body: { plugin: "probe", enabled: false } });
    await pub.publishAsync("drop/2", "plugin off: delivered", { qos: 1 });
    await got.waitFor(1);
    assert.equal((await api(broker, "POST", "/plugins/probe/enable")).status, 200);
    await pub.publishAsync("drop/3", "dropped again", { qos: 1 });
    await settle(sub);
    assert.deepEqual(
      got.messages.map((m) => m.topic),
      ["drop/2"],
    );
    await end(sub, pub);
  });

  test("reload: 200 when the new build loads; 422 with the reason when it is refused, and the old build keeps running", async () => {
    const ok = await api(broker, "POST", "/plugins/probe/reload");
    assert.deepEqual(ok, { status: 200, body: { plugin: "probe", ok: true, error: null } });

    writeFileSync(pluginFile, "this is not WebAssembly");
    const refused = await api(broker, "POST", "/plugins/probe/reload");
    assert.equal(refused.status, 422);
    assert.equal(refused.body.ok, false);
    assert.ok(String(refused.body.error).length > 0);
    const slot = (await api(broker, "GET", "/plugins/probe")).body;
    assert.equal(slot.ready, true);
    assert.equal(slot.lastError, refused.body.error);

    const sub = await connect(broker.url);
    const got = collect(sub);
    await subscribe(sub, ["drop/#", "ok/#"], 1);
    const pub = await connect(broker.url);
    await pub.publishAsync("drop/x", "still dropped by the old build", { qos: 1 });
    await pub.publishAsync("ok/x", "fine", { qos: 1 });
    await got.waitFor(1);
    await settle(sub);
    assert.deepEqual(
      got.messages.map((m) => m.topic),
      ["ok/x"],
    );
    copyFileSync(await buildFixture("probe"), pluginFile);
    await end(sub, pub);
  });

  test("GET /clients lists connected clients; DELETE /clients/:id disconnects one without its will (or with ?will=true)", async () => {
    const watcher = await connect(broker.url);
    const wills = collect(watcher);
    await subscribe(watcher, "wills/#", 0);
    const victim = await connect(broker.url, { clientId: "kick me", username: "victim", will: { topic: "wills/a", payload: Buffer.from("a"), qos: 0, retain: false } });
    await subscribe(victim, "victim/#", 1);

    const { body } = await api(broker, "GET", "/clients");
    const listed = (body.clients as Record<string, unknown>[]).find((c) => c.id === "kick me");
    assert.ok(listed, "the client is listed");
    assert.equal(listed.username, "victim");
    assert.match(String(listed.remote), /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(listed.subscriptions, [{ topic: "victim/#", qos: 1 }]);
    assert.equal((await api(broker, "GET", `/clients/${encodeURIComponent("kick me")}`)).body.id, "kick me");

    const closed = new Promise<void>((r) => victim.once("close", () => r()));
    const kicked = await api(broker, "DELETE", `/clients/${encodeURIComponent("kick me")}`);
    assert.deepEqual(kicked, { status: 200, body: { client: "kick me", disconnected: true, will: false } });
    await closed;
    assert.equal((await api(broker, "DELETE", `/clients/${encodeURIComponent("kick me")}`)).status, 404);

    const second = await connect(broker.url, { clientId: "kick with will", will: { topic: "wills/b", payload: Buffer.from("b"), qos: 0, retain: false } });
    assert.equal((await api(broker, "DELETE", `/clients/${encodeURIComponent("kick with will")}?will=true`)).status, 200);
    await wills.waitFor(1);
    await settle(watcher);
    assert.deepEqual(
      wills.messages.map((m) => m.topic),
      ["wills/b"],
    );
    victim.end(true);
    second.end(true);
    await end(watcher);
  });

  test("wrong methods are 405 with Allow, unknown paths 404, errors are JSON", async () => {
    const wrong = await api(broker, "DELETE", "/plugins");
    assert.equal(wrong.status, 405);
    assert.match(String(wrong.body.error), /GET/);
    const res = await fetch(`${broker.admin!.url}/plugins/probe/reload`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "POST");
    assert.equal((await api(broker, "GET", "/nothing/here")).status, 404);
  });

  test("wasmq admin: plugins, clients, disable, enable, reload and kick from the command line", async () => {
    const common = ["--url", broker.admin!.url, "--token", TOKEN];
    const plugins = await adminCli(["plugins", ...common]);
    assert.equal(plugins.code, 0, plugins.err);
    assert.match(plugins.out, /^NAME\s+KIND\s+ENABLED/m);
    assert.match(plugins.out, /^probe\s+wasm\s+yes\s+yes\s+closed/m);

    const c = await connect(broker.url, { clientId: "cli-client", username: "carol" });
    const clients = await adminCli(["clients", "--json", ...common]);
    assert.equal(clients.code, 0, clients.err);
    assert.ok((JSON.parse(clients.out) as { clients: { id: string; username: string }[] }).clients.some((x) => x.id === "cli-client" && x.username === "carol"));

    assert.deepEqual(await adminCli(["disable", "probe", ...common]), { code: 0, out: "plugin probe disabled\n", err: "" });
    assert.deepEqual(await adminCli(["enable", "probe", ...common]), { code: 0, out: "plugin probe enabled\n", err: "" });
    assert.deepEqual(await adminCli(["reload", "probe", ...common]), { code: 0, out: "plugin probe reloaded\n", err: "" });
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    assert.deepEqual(await adminCli(["kick", "cli-client", ...common]), { code: 0, out: "client cli-client disconnected\n", err: "" });
    await closed;

    const missing = await adminCli(["kick", "nobody", ...common]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no client connected with id "nobody" \(HTTP 404\)/);
    const unauthorized = await adminCli(["plugins", "--url", broker.admin!.url, "--token", "wrong-token-0123456789"]);
    assert.equal(unauthorized.code, 1);
    assert.match(unauthorized.err, /HTTP 401/);
    const usage = await adminCli(["frobnicate", ...common]);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /unknown admin command "frobnicate"/);
    const noName = await adminCli(["reload", ...common]);
    assert.equal(noName.code, 2);
  });

  test("wasmq admin --config reads the address and token from the broker's config file", async () => {
    const file = join(tempDir(), "wasmq.json");
    writeFileSync(file, JSON.stringify({ metrics: { port: broker.admin!.address.port, token: TOKEN } }));
    const plugins = await adminCli(["plugins", "--config", file]);
    assert.equal(plugins.code, 0, plugins.err);
    assert.match(plugins.out, /^probe\s/m);
  });

  test("an unreachable admin API is a clear error", async () => {
    const r = await adminCli(["plugins", "--url", "http://127.0.0.1:9"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);
  });
});

describe("--metrics-port", { timeout: 60_000 }, () => {
  test("serves metrics and the admin API from the command line; SIGTERM with a client connected exits 0", async () => {
    const [mqttPort, adminPort] = [await freePort(), await freePort()];
    const file = join(tempDir(), "wasmq.json");
    writeFileSync(file, JSON.stringify({ port: mqttPort, ws: false, persistence: "memory", log: { level: "warn" } }));
    const child = spawn(process.execPath, [CLI, "-c", file, "--metrics-port", String(adminPort)], { stdio: ["ignore", "ignore", "pipe"] });
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    try {
      let health: Response | null = null;
      for (let i = 0; i < 100 && !health; i++) {
        health = await fetch(`http://127.0.0.1:${adminPort}/health`).catch(() => null);
        if (!health) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(health?.status, 200);
      const client = await connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: "still-here" });
      const clients = (await (await fetch(`http://127.0.0.1:${adminPort}/clients`)).json()) as { clients: { id: string }[] };
      assert.deepEqual(
        clients.clients.map((c) => c.id),
        ["still-here"],
      );
      child.kill("SIGTERM");
      assert.equal(await exited, 0, "graceful shutdown with a client still connected");
      client.end(true);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("admin API exposure", { timeout: 30_000 }, () => {
  test("a non-loopback admin address without a token is a config error naming metrics.token", () => {
    const raw = parseRawConfig({ metrics: { host: "0.0.0.0", port: 0, tls: false } }, "test config");
    assert.throws(() => resolveConfig(raw, null), (err: Error) => err instanceof ConfigError && /"metrics\.token": required when "metrics\.host" is 0\.0\.0\.0/.test(err.message));
    const withToken = resolveConfig(parseRawConfig({ metrics: { host: "0.0.0.0", port: 0, token: TOKEN, tls: false } }, "test config"), null);
    assert.equal(withToken.metrics!.token, TOKEN);
    assert.equal(resolveConfig(parseRawConfig({ metrics: { port: 0 } }, "test config"), null).metrics!.host, "127.0.0.1", "loopback by default");
  });

  test("the only authentication plugin of a public broker cannot be disabled (409); the broker stays protected", async () => {
    const broker = await startTestBroker({
      persistence: "memory",
      host: "0.0.0.0",
      ws: false,
      metrics: { port: 0, token: TOKEN },
      plugins: [{ name: "auth", native: NATIVE_AUTH, config: { password: "pw" } }],
    });
    try {
      const refused = await api(broker, "POST", "/plugins/auth/disable");
      assert.equal(refused.status, 409);
      assert.match(String(refused.body.error), /only authentication.*allowAnonymous/);
      assert.equal((await api(broker, "GET", "/plugins/auth")).body.enabled, true);
    } finally {
      await broker.stop();
    }
  });
});

