// Structured logs (one line per connect, refusal and disconnect at info; per
// message only at trace; level from config or --log-level) and secure defaults
// (no authentication → loopback only, and the broker says so).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import { parseRawConfig, resolveConfig, type RawConfig } from "../broker/config.js";
import { startBroker, type RunningBroker } from "../broker/server.js";
import { CLI, connect, connectRefused, end, freePort, tempDir } from "./helpers.js";
import { RawClient } from "./ops-raw-mqtt.js";

interface Line {
  level: number;
  msg: string;
  [key: string]: unknown;
}

const INFO = 30;
const WARN = 40;
const NATIVE_AUTH = fileURLToPath(new URL("./ops-native-auth.js", import.meta.url));

const running: RunningBroker[] = [];
after(async () => {
  for (const b of running) await b.close();
});

async function startLogged(raw: RawConfig, level: "info" | "trace" = "info"): Promise<{ broker: RunningBroker; lines: Line[]; url: string }> {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, callback) {
      for (const text of chunk.toString("utf8").split("\n")) if (text) lines.push(JSON.parse(text) as Line);
      callback();
    },
  });
  const config = resolveConfig(parseRawConfig({ port: 0, ws: false, persistence: "memory", sys: false, data: tempDir(), ...raw }, "test config"), null);
  const broker = await startBroker(config, { logger: pino({ level }, sink) });
  running.push(broker);
  return { broker, lines, url: `mqtt://127.0.0.1:${broker.port("tcp")}` };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

const about = (lines: Line[], msg: string, clientId: string) => lines.filter((l) => l.msg === msg && l.clientId === clientId);

describe("logs", { timeout: 60_000 }, () => {
  test("info: one line per connect and per disconnect, with client id, user name and remote address; nothing per message", async () => {
    const { lines, url } = await startLogged({});
    const c = await connect(url, { clientId: "log-alice", username: "alice" });
    await c.subscribeAsync("log/#", { qos: 1 });
    for (let i = 0; i < 5; i++) await c.publishAsync("log/x", `m${i}`, { qos: 1 });
    await c.endAsync(); // sends DISCONNECT
    await until(() => about(lines, "client disconnected", "log-alice").length > 0, "the disconnect line");

    const connected = about(lines, "client connected", "log-alice");
    assert.equal(connected.length, 1);
    assert.equal(connected[0]!.level, INFO);
    assert.equal(connected[0]!.username, "alice");
    assert.match(String(connected[0]!.remote), /^127\.0\.0\.1:\d+$/);
    const gone = about(lines, "client disconnected", "log-alice");
    assert.equal(gone.length, 1);
    assert.equal(gone[0]!.level, INFO);
    assert.equal(gone[0]!.reason, "client sent DISCONNECT");
    assert.equal(gone[0]!.remote, connected[0]!.remote);
    assert.deepEqual(
      lines.filter((l) => /publish/i.test(l.msg)),
      [],
      "no per-message lines at info",
    );
  });

  test("refusals and dropped connections: one line each, with the reason", async () => {
    const { broker, lines, url } = await startLogged({ limits: { maxClientIdLength: 8 } });
    assert.equal(await connectRefused(url, { clientId: "much-too-long" }), 2);
    const { client } = await RawClient.connect(broker.port("tcp"), { clientId: "dropper" });
    client.destroy();
    const { client: bad } = await RawClient.connect(broker.port("tcp"), { clientId: "badflags" });
    bad.write({ cmd: "publish", topic: "a/#", payload: Buffer.from("x"), qos: 0 });
    await until(() => about(lines, "client disconnected", "dropper").length + about(lines, "client disconnected", "badflags").length === 2, "two disconnect lines");

    const refused = about(lines, "client refused", "much-too-long");
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.returnCode, 2);
    assert.match(String(refused[0]!.reason), /maxClientIdLength/);
    assert.match(String(about(lines, "client disconnected", "badflags")[0]!.reason), /# is not allowed/);
    assert.ok(about(lines, "client disconnected", "dropper")[0]!.reason);
  });

  test("trace: every message is logged as it comes in and goes out", async () => {
    const { lines, url } = await startLogged({}, "trace");
    const c = await connect(url, { clientId: "tracer" });
    await c.subscribeAsync("trace/#", { qos: 0 });
    await c.publishAsync("trace/one", "x", { qos: 0 });
    await until(() => lines.some((l) => l.msg === "publish sent" && l.topic === "trace/one"), "the outgoing line");
    const incoming = lines.filter((l) => l.msg === "publish received" && l.topic === "trace/one");
    assert.equal(incoming.length, 1);
    assert.equal(incoming[0]!.clientId, "tracer");
    await end(c);
  });

  test("--log-level sets the level from the command line (warn: no connect lines)", async () => {
    const port = await freePort();
    const dir = tempDir();
    const file = join(dir, "wasmq.json");
    writeFileSync(file, JSON.stringify({ port, ws: false, persistence: "memory", sys: false, log: { level: "info" } }));
    const child = spawn(process.execPath, [CLI, "-c", file, "--log-level", "warn"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      let c = null;
      for (let i = 0; i < 100 && !c; i++) {
        c = await connect(`mqtt://127.0.0.1:${port}`, { clientId: "quiet" }).catch(() => null);
        if (!c) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(c, "the CLI broker came up");
      await end(c);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    const levels = out
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as Line).level);
    assert.ok(
      levels.every((l) => l >= WARN),
      `only warn and above: ${out}`,
    );
  });
});

describe("secure defaults", { timeout: 60_000 }, () => {
  test("without authentication the broker listens on loopback only and says so", async () => {
    const { lines } = await startLogged({});
    const notice = lines.filter((l) => /loopback only/.test(l.msg));
    assert.equal(notice.length, 1);
    assert.equal(notice[0]!.level, INFO);
  });

  test("a public address without authentication is refused, naming the address and the way out", async () => {
    await assert.rejects(startLogged({ host: "0.0.0.0" }), /refusing to listen on 0\.0\.0\.0 without authentication.*allowAnonymous/);
    await assert.rejects(startLogged({ ws: { port: 0, host: "::" } }), /refusing to listen on :: without authentication/);
  });

  test("allowAnonymous: true opens a public address, with a warning", async () => {
    const { lines } = await startLogged({ host: "0.0.0.0", allowAnonymous: true });
    const warning = lines.filter((l) => /allowAnonymous/.test(l.msg));
    assert.equal(warning.length, 1);
    assert.equal(warning[0]!.level, WARN);
  });

  test("an authentication plugin (a connect hook) opens a public address, and it is enforced", async () => {
    const { lines, url } = await startLogged({
      host: "0.0.0.0",
      plugins: [{ name: "auth", native: NATIVE_AUTH, config: { password: "s3cret" } }],
    });
    assert.equal(lines.filter((l) => /loopback only|allowAnonymous/.test(l.msg)).length, 0);
    assert.equal(await connectRefused(url, { clientId: "intruder", username: "u", password: "wrong" }), 4);
    const refused = about(lines, "client refused", "intruder");
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.returnCode, 4);
    assert.equal(refused[0]!.username, "u");
    assert.match(String(refused[0]!.reason), /refused by plugin auth/);
    const ok = await connect(url, { username: "u", password: "s3cret" });
    assert.ok(ok.connected);
    await end(ok);
  });

  test("the CLI exits with the reason when asked to bind publicly without authentication", async () => {
    const dir = tempDir();
    const file = join(dir, "wasmq.json");
    writeFileSync(file, JSON.stringify({ port: 0, ws: false, persistence: "memory" }));
    const child = spawn(process.execPath, [CLI, "-c", file, "--host", "0.0.0.0"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    assert.equal(code, 2);
    assert.match(err, /refusing to listen on 0\.0\.0\.0 without authentication/);
  });
});

