// The wasmq command line (dist/broker/cli.js) as a user runs it: --help,
// config validation messages, flags over the file, listener log lines, a port
// already taken, graceful shutdown on SIGTERM/SIGINT, a bad --data path.
// Every broker gets a temp config, ephemeral ports and a temp LMDB dir.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { CliBroker, closed, killSpawned, listenerLines, makeSelfSignedCert, runCli, writeConfig, type Finished } from "./broker-support.js";
import { collect, connect, end, subscribe, tempDir } from "./helpers.js";

const base = tempDir("wasmq-cli-");
let counter = 0;
const openClients: MqttClient[] = [];

after(async () => {
  await end(...openClients);
  await killSpawned();
  rmSync(base, { recursive: true, force: true });
});

/** A new empty folder under the suite's temp dir. */
function newDir(name: string): string {
  const dir = join(base, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A config file (plugin-less unless told otherwise) in its own folder, so relative paths in it resolve there. */
function config(content: unknown = { plugins: [] }): string {
  return writeConfig(newDir("cfg"), "wasmq.json", content);
}

/** A data directory path that does not exist yet. */
function freshData(): string {
  return join(base, `data-${++counter}`);
}

/** Start the CLI with ephemeral ports and a fresh data dir unless given; resolves when it logged "wasmq ready". */
async function startCli(args: string[] = [], file = config()) {
  const hasData = args.includes("--data");
  const broker = new CliBroker(["--config", file, "--port", "0", "--ws-port", "0", ...(hasData ? [] : ["--data", freshData()]), ...args]);
  const ports = await broker.ready();
  return { broker, ports };
}

async function client(url: string, opts: Parameters<typeof connect>[1] = {}): Promise<MqttClient> {
  const c = await connect(url, opts);
  openClients.push(c);
  return c;
}

function assertCleanFailure(run: Finished, ...mentions: string[]): void {
  assert.notEqual(run.code, 0, `expected a non-zero exit; stderr: ${run.stderr}`);
  for (const m of mentions) assert.ok(run.stderr.includes(m), `stderr should mention ${JSON.stringify(m)}: ${run.stderr}`);
  assert.ok(!run.stderr.includes("    at "), `no stack trace expected: ${run.stderr}`);
  assert.ok(!run.stdout.includes("wasmq ready"), `the broker should not have become ready: ${run.stdout}`);
}

// Independent tests (own config, data dir, ports): run a few at once, since each
// start of the CLI costs about a second of CPU and the shutdown test may wait.
describe("wasmq CLI", { concurrency: 4 }, () => {
  test("--help exits 0 and lists the options", async () => {
    const run = await runCli(["--help"]);
    assert.equal(run.code, 0, run.stderr);
    for (const option of ["--config", "--port", "--ws-port", "--data", "--host"]) assert.ok(run.stdout.includes(option), `usage mentions ${option}`);
    assert.match(run.stdout, /Usage/);
    assert.equal(run.stderr, "");
  });

  describe("start-up errors name the key, file or flag, without a stack trace", { concurrency: 4 }, () => {
    test("unknown keys: names each (with its full path) and the file", async () => {
      const file = config({ plugins: [], bogusKey: 1, ws: { port: 0, colour: "blue" } });
      assertCleanFailure(await runCli(["--config", file, "--data", freshData()]), '"bogusKey"', '"ws.colour"', file);
    });

    test("wrong type: names the key", async () => {
      const file = config({ plugins: [], port: "abc" });
      assertCleanFailure(await runCli(["--config", file, "--data", freshData()]), '"port"', file);
    });

    test("missing plugin file: names the key and the path", async () => {
      const file = config({ plugins: [{ name: "ghost", wasm: "./no-such-plugin.wasm" }] });
      const missing = join(file, "..", "no-such-plugin.wasm");
      assertCleanFailure(await runCli(["--config", file, "--data", freshData()]), "plugins.0.wasm", missing);
    });

    test("invalid JSON: names the file", async () => {
      const file = config('{ "port": 1883, ');
      const run = await runCli(["--config", file, "--data", freshData()]);
      assertCleanFailure(run, file);
      assert.match(run.stderr, /JSON/);
    });

    test("missing config file: names it", async () => {
      const file = join(base, "does-not-exist.json");
      assertCleanFailure(await runCli(["--config", file, "--data", freshData()]), file);
    });

    test("unknown flag and bad flag value: name the flag", async () => {
      assertCleanFailure(await runCli(["--config", config(), "--colour", "blue"]), "--colour");
      assertCleanFailure(await runCli(["--config", config(), "--port", "abc"]), "--port", "abc");
    });

    test("--data under a regular file: names the path", async () => {
      const file = join(base, "a-regular-file");
      writeFileSync(file, "not a directory");
      const data = join(file, "data");
      assertCleanFailure(await runCli(["--config", config(), "--port", "0", "--ws-port", "0", "--data", data]), data);
    });
  });

  test("flags override the file: --host, --port, --ws-port, --data", async () => {
    // The file asks for a public address without authentication (refused at start-up),
    // fixed ports and its own data folder; the flags replace all four.
    const file = config({ plugins: [], host: "0.0.0.0", port: 1, ws: { port: 1 }, data: "./from-config" });
    const data = freshData();
    const { broker, ports } = await startCli(["--host", "127.0.0.1", "--data", data], file);
    assert.notEqual(ports.tcp, 1);
    assert.notEqual(ports.ws, 1);
    const lines = listenerLines(broker.lines);
    assert.deepEqual(lines.map((l) => l.kind).sort(), ["tcp", "ws"], "one line per listener");
    assert.ok(lines.every((l) => l.host === "127.0.0.1"), JSON.stringify(lines));
    assert.equal(lines.find((l) => l.kind === "ws")!.path, "/mqtt");

    const tcp = await client(`mqtt://127.0.0.1:${ports.tcp}`);
    const ws = await client(`ws://127.0.0.1:${ports.ws}/mqtt`);
    const got = collect(ws);
    await subscribe(ws, "cli/flags", 1);
    await tcp.publishAsync("cli/flags", "through the CLI broker", { qos: 1 });
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), "through the CLI broker");

    assert.ok(existsSync(join(data, "data.mdb")), "LMDB lives in the --data folder");
    assert.ok(!existsSync(join(file, "..", "from-config")), "the file's data folder is not used");
    await end(tcp, ws);
    assert.deepEqual(await broker.stop("SIGTERM"), { code: 0, signal: null });
  });

  test("with TLS configured it logs one line per listener: TCP, TLS and WebSocket; SIGINT exits 0", async () => {
    const dir = newDir("tls");
    const cert = makeSelfSignedCert(dir);
    const file = config({ plugins: [], tls: { port: 0, cert: cert.certFile, key: cert.keyFile } });
    const { broker, ports } = await startCli([], file);
    const lines = listenerLines(broker.lines);
    assert.deepEqual(lines.map((l) => l.kind).sort(), ["tcp", "tls", "ws"]);
    assert.ok(ports.tls! > 0);
    const c = await client(`mqtts://127.0.0.1:${ports.tls}`, { ca: cert.cert, servername: "localhost" });
    assert.ok(c.connected);
    await end(c);
    assert.deepEqual(await broker.stop("SIGINT"), { code: 0, signal: null });
    assert.ok(broker.lines.some((l) => l.msg === "SIGINT received, shutting down"));
  });

  test("a second broker on a TCP port in use exits non-zero saying so; the first keeps serving", async () => {
    const { broker: first, ports } = await startCli();
    const second = await runCli(["--config", config(), "--port", String(ports.tcp), "--ws-port", "0", "--data", freshData()]);
    assertCleanFailure(second, `port ${ports.tcp}`, "already in use");

    assert.equal(first.child.exitCode, null, "the first broker is still running");
    const sub = await client(`mqtt://127.0.0.1:${ports.tcp}`);
    const got = collect(sub);
    await subscribe(sub, "cli/still", 1);
    await sub.publishAsync("cli/still", "serving", { qos: 1 });
    assert.equal((await got.waitFor(1))[0]!.payload.toString(), "serving");
    await end(sub);
    assert.deepEqual(await first.stop("SIGTERM"), { code: 0, signal: null });
  });

  test(
    "a WebSocket port in use: exits non-zero saying so",
    async () => {
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
      try {
        const taken = (blocker.address() as AddressInfo).port;
        const run = await runCli(["--config", config(), "--port", "0", "--ws-port", String(taken), "--data", freshData()]);
        assertCleanFailure(run, `port ${taken}`, "already in use");
      } finally {
        await new Promise((resolve) => blocker.close(resolve));
      }
    },
  );

  test("SIGTERM: exits 0 and LMDB keeps a retained message for the next start on the same data dir", async () => {
    const data = freshData();
    const file = config();
    const { broker, ports } = await startCli(["--data", data], file);
    const pub = await client(`mqtt://127.0.0.1:${ports.tcp}`);
    await pub.publishAsync("cli/kept", "survives restarts", { qos: 1, retain: true });
    await pub.endAsync(false);
    assert.deepEqual(await broker.stop("SIGTERM"), { code: 0, signal: null });
    assert.ok(broker.lines.some((l) => l.msg === "SIGTERM received, shutting down"));

    const { broker: again, ports: portsAgain } = await startCli(["--data", data], file);
    const sub = await client(`mqtt://127.0.0.1:${portsAgain.tcp}`);
    const got = collect(sub);
    await subscribe(sub, "cli/kept", 1);
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), "survives restarts");
    assert.equal(m!.retain, true);
    await end(sub);
    assert.deepEqual(await again.stop("SIGTERM"), { code: 0, signal: null });
  });

  test(
    "SIGTERM with a client connected: the client sees the connection close and the broker exits 0",
    async () => {
      const { broker, ports } = await startCli();
      const c = await client(`mqtt://127.0.0.1:${ports.tcp}`);
      const clientGone = closed(c);
      const exit = broker.stop("SIGTERM");
      await clientGone;
      assert.deepEqual(await exit, { code: 0, signal: null });
    },
  );
});
