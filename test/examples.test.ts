// Every broker config in examples/ as an operator would run it (the file as
// written, only ports and data dir overridden): it loads, the broker starts with
// its plugin chain, the device simulator runs against it without errors, and the
// scenario the config exists for holds, observed with real clients.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { pino } from "pino";
import { loadConfig } from "../broker/config.js";
import { startBroker, type RunningBroker } from "../broker/server.js";
import type { Summary } from "../examples/simulator.js";
import { collect, connect, connectRefused, end, ROOT, settle, subscribe, tempDir } from "./helpers.js";

const EXAMPLES = join(ROOT, "examples");
const SIMULATOR = join(ROOT, "dist/examples/simulator.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Run the simulator as a user would; resolves to its JSON summary. */
async function simulate(url: string, args: string[]): Promise<Summary> {
  const r = await run(process.execPath, [SIMULATOR, "--url", url, "--devices", "3", "--rate", "4", "--duration", "2", "--seed", "42", "--json", ...args]);
  assert.equal(r.code, 0, `simulator failed:\n${r.stdout}${r.stderr}`);
  assert.equal(r.stderr, "");
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Summary;
}

function assertHealthy(s: Summary): void {
  assert.equal(s.devices, 3);
  assert.equal(s.connected, 3);
  assert.equal(s.failedToConnect, 0);
  assert.equal(s.lost, 0);
  assert.equal(s.errors, 0);
  assert.equal(s.unacked, 0);
  assert.ok(s.sent >= 6, `expected the devices to publish, sent ${s.sent}`);
  assert.equal(s.acked, s.sent, "every QoS 1 publish acknowledged");
}

/**
 * helpers.settle for clients the ACL confines: a round trip on a topic they may
 * read, published by a client that may write it. Once it is back, every message
 * acknowledged before it has reached `sub` (one connection, in order).
 */
async function settleVia(sub: MqttClient, pub: MqttClient, tenant: string): Promise<void> {
  const topic = `tenants/${tenant}/settle/${Math.random().toString(36).slice(2)}`;
  const back = new Promise<void>((resolve) => {
    const onMessage = (t: string) => {
      if (t !== topic) return;
      sub.off("message", onMessage);
      resolve();
    };
    sub.on("message", onMessage);
  });
  assert.deepEqual(await subscribe(sub, topic, 1), [1]);
  await pub.publishAsync(topic, "settle", { qos: 1 });
  await back;
  await sub.unsubscribeAsync(topic);
}

const notSettle = (m: { topic: string }) => !m.topic.includes("/settle/");

function json(payload: Buffer): Record<string, unknown> {
  return JSON.parse(payload.toString()) as Record<string, unknown>;
}

interface Example {
  broker: RunningBroker;
  url: string;
}

/** Start the broker from an example file, as `npm start -- --config examples/FILE` would, on free ports. */
function exampleBroker(file: string): { get(): Example; start(): Promise<void>; stop(): Promise<void> } {
  let example: Example | undefined;
  let data: string | undefined;
  return {
    get: () => example!,
    async start() {
      data = tempDir("wasmq-example-");
      const config = loadConfig(join(EXAMPLES, file), { port: 0, wsPort: 0, data });
      const broker = await startBroker(config, { logger: pino({ level: process.env.WASMQ_TEST_LOG ?? "silent" }) });
      example = { broker, url: `mqtt://127.0.0.1:${broker.port("tcp")}` };
    },
    async stop() {
      await example?.broker.close();
      if (data) rmSync(data, { recursive: true, force: true });
    },
  };
}

const SCENARIOS = ["multi-tenant.json", "telemetry.json"];

test("every config in examples/ has a scenario in this suite", () => {
  const configs = readdirSync(EXAMPLES).filter((f) => f.endsWith(".json")).sort();
  assert.deepEqual(configs, SCENARIOS);
});

describe("examples/multi-tenant.json: two tenants on one broker", () => {
  const ex = exampleBroker("multi-tenant.json");
  const login = (user: string, password: string, id = `${user}-test`) => ({ username: user, password, clientId: id });
  const ACME = login("acme", "acme-fleet-pw", "acme-gw");
  const GLOBEX = login("globex", "globex-fleet-pw", "globex-gw");
  const ALICE = login("alice", "alice-pw");
  const BOB = login("bob", "bob-pw");
  const OPS = login("ops", "ops-pw");
  const clients: MqttClient[] = [];
  const open = async (opts: ReturnType<typeof login>) => {
    const c = await connect(ex.get().url, { ...opts, clean: true });
    clients.push(c);
    return c;
  };

  before(() => ex.start());
  after(async () => {
    await end(...clients);
    await ex.stop();
  });

  test("loads with its whole chain", () => {
    assert.deepEqual(
      ex.get().broker.chain.slots.map((s) => s.name),
      ["auth", "acl", "ratelimit", "retention"],
    );
  });

  test("auth: the demo users get in; wrong passwords, unknown users, anonymous clients and foreign client ids do not", async () => {
    const url = ex.get().url;
    for (const user of [ACME, GLOBEX, ALICE, BOB, OPS]) await end(await connect(url, user));
    assert.equal(await connectRefused(url, { ...ALICE, password: "wrong" }), 4);
    assert.equal(await connectRefused(url, login("mallory", "alice-pw")), 4);
    assert.equal(await connectRefused(url, { clientId: "anonymous-1" }), 5);
    assert.equal(await connectRefused(url, { ...ALICE, clientId: "bob-laptop" }), 2);
  });

  test("auth, seen by mosquitto_pub: a wrong password is refused", async () => {
    const port = String(ex.get().broker.port("tcp"));
    const r = await run("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-i", "acme-cli", "-u", "acme", "-P", "nope", "-t", "tenants/acme/x", "-m", "hi"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /bad user name or password/i);
  });

  test("acl: a tenant's users cannot subscribe to the other tenant", async () => {
    const alice = await open(ALICE);
    assert.deepEqual(await subscribe(alice, ["tenants/globex/#", "tenants/acme/#", "#", "$SYS/#"], 1), [128, 1, 128, 128]);
    const globex = await open(GLOBEX);
    assert.deepEqual(await subscribe(globex, ["tenants/acme/devices/+/temp", "tenants/globex/#"], 1), [128, 1]);
    assert.ok(alice.connected && globex.connected, "a refused filter does not cost the connection");
  });

  test("acl: a publish into the other tenant is dropped, one into the own tenant arrives", async () => {
    const bob = await open(BOB);
    const bobGot = collect(bob);
    await subscribe(bob, "tenants/globex/#", 1);
    const alice = await open(ALICE);
    const aliceGot = collect(alice);
    await subscribe(alice, "tenants/acme/#", 1);

    await alice.publishAsync("tenants/globex/commands/reboot", "from alice", { qos: 1 });
    await bob.publishAsync("tenants/globex/commands/reboot", "from bob", { qos: 1 });
    await alice.publishAsync("tenants/acme/commands/reboot", "from alice", { qos: 1 });
    await settleVia(bob, bob, "globex");
    await settleVia(alice, alice, "acme");
    assert.deepEqual(bobGot.messages.filter(notSettle).map((m) => m.payload.toString()), ["from bob"]);
    assert.deepEqual(aliceGot.messages.filter(notSettle).map((m) => [m.topic, m.payload.toString()]), [["tenants/acme/commands/reboot", "from alice"]]);
    assert.ok(alice.connected, "a dropped publish does not disconnect");
  });

  test("ops reads every tenant but cannot publish", async () => {
    const ops = await open(OPS);
    const got = collect(ops);
    assert.deepEqual(await subscribe(ops, ["tenants/#", "$SYS/#"], 1), [1, 1]);
    const acme = await open(ACME);
    const globex = await open(GLOBEX);
    await acme.publishAsync("tenants/acme/devices/acme-7/temp", '{"value":21}', { qos: 1 });
    await globex.publishAsync("tenants/globex/devices/globex-7/temp", '{"value":22}', { qos: 1 });
    await ops.publishAsync("tenants/acme/commands/reboot", "from ops", { qos: 1 });
    await settleVia(ops, acme, "acme");
    assert.ok(ops.connected, "a dropped publish does not disconnect");
    assert.deepEqual(got.messages.filter(notSettle).filter((m) => !m.topic.startsWith("$SYS/")).map((m) => m.topic).sort(), ["tenants/acme/devices/acme-7/temp", "tenants/globex/devices/globex-7/temp"]);
  });

  test("retention: a device's retained status is kept for later subscribers, a retained reading is not", async () => {
    const acme = await open(ACME);
    await acme.publishAsync("tenants/acme/devices/acme-8/status", '{"status":"online"}', { qos: 1, retain: true });
    await acme.publishAsync("tenants/acme/devices/acme-8/temp", '{"value":20}', { qos: 1, retain: true });
    const alice = await open(login("alice", "alice-pw", "alice-late"));
    const got = collect(alice);
    await subscribe(alice, "tenants/acme/devices/acme-8/#", 1);
    await settleVia(alice, alice, "acme");
    assert.deepEqual(got.messages.filter(notSettle).map((m) => [m.topic, m.retain]), [["tenants/acme/devices/acme-8/status", true]]);
  });

  test("the simulator's acme fleet connects and publishes; ops sees it, globex does not", async () => {
    const ops = await open(login("ops", "ops-pw", "ops-watch"));
    const opsGot = collect(ops);
    await subscribe(ops, "tenants/acme/devices/#", 1);
    const globex = await open(login("globex", "globex-fleet-pw", "globex-watch"));
    const globexGot = collect(globex);
    await subscribe(globex, "tenants/globex/#", 1);

    const summary = await simulate(ex.get().url, ["--username", "acme", "--password", "acme-fleet-pw", "--id-prefix", "acme-", "--topic-prefix", "tenants/acme/devices"]);
    assertHealthy(summary);
    await settleVia(ops, await open(login("acme", "acme-fleet-pw", "acme-settle")), "acme");
    const readings = opsGot.messages.filter((m) => /^tenants\/acme\/devices\/acme-[123]\/(temp|humidity|battery)$/.test(m.topic));
    assert.equal(readings.length, summary.sent - 6, "every reading arrives (the rest are 3 online + 3 offline statuses)");
    assert.equal(globexGot.messages.length, 0);
  });
});

describe("examples/telemetry.json: transform, filter, router and aggregate on sensors/#", () => {
  const ex = exampleBroker("telemetry.json");
  let sub: MqttClient;
  let pub: MqttClient;
  let got: ReturnType<typeof collect>;

  before(async () => {
    await ex.start();
    sub = await connect(ex.get().url);
    got = collect(sub);
    await subscribe(sub, ["sensors/#", "alerts/#", "stats/#"], 1);
    pub = await connect(ex.get().url);
  });
  after(async () => {
    await end(sub, pub);
    await ex.stop();
  });

  const received = (topic: string) => got.messages.filter((m) => m.topic === topic).map((m) => m.payload.toString());

  test("loads with its whole chain", () => {
    assert.deepEqual(
      ex.get().broker.chain.slots.map((s) => s.name),
      ["transform", "filter", "router", "aggregate"],
    );
  });

  test("an out-of-range reading is dropped, a hot one passes and raises an alert, a normal one just passes", async () => {
    await pub.publishAsync("sensors/t1/temp", '{"value":150}', { qos: 1 });
    await pub.publishAsync("sensors/t1/temp", '{"value":55}', { qos: 1 });
    await pub.publishAsync("sensors/t1/temp", '{"value":20}', { qos: 1 });
    await pub.publishAsync("sensors/t1/temp", "hot!", { qos: 1 });
    await settle(sub);
    assert.deepEqual(received("sensors/t1/temp"), ['{"value":55}', '{"value":20}']);
    assert.deepEqual(received("alerts/t1/temp"), ['{"value":55}']);
    assert.ok(pub.connected);
  });

  test("a low battery raises a maintenance alert", async () => {
    await pub.publishAsync("sensors/t2/battery", '{"value":7.5}', { qos: 1 });
    await pub.publishAsync("sensors/t2/battery", '{"value":80}', { qos: 1 });
    await settle(sub);
    assert.deepEqual(received("alerts/t2/battery"), ['{"value":7.5}']);
  });

  test("CSV from a legacy device becomes JSON, and is filtered and routed like the rest", async () => {
    await pub.publishAsync("sensors/legacy-1/csv", "21.5,45", { qos: 1 });
    await pub.publishAsync("sensors/legacy-1/csv", "150,45", { qos: 1 });
    await pub.publishAsync("sensors/legacy-1/csv", "44.5,30", { qos: 1 });
    await pub.publishAsync("sensors/legacy-1/csv", "21.5", { qos: 1 });
    await settle(sub);
    assert.deepEqual(received("sensors/legacy-1/csv"), ['{"temp":21.5,"humidity":45}', '{"temp":44.5,"humidity":30}']);
    assert.deepEqual(received("alerts/legacy-1/temp"), ['{"temp":44.5,"humidity":30}']);
  });

  test("aggregate publishes per-topic statistics of the readings that passed the filter", async () => {
    // Windows are 5 s on the broker's tick: wait until the summaries of sensors/t1/temp cover both readings.
    const deadline = Date.now() + 20_000;
    let summaries: Record<string, unknown>[] = [];
    for (;;) {
      summaries = got.messages.filter((m) => m.topic === "stats/sensors/t1/temp").map((m) => json(m.payload));
      if (summaries.reduce((n, s) => n + (s.count as number), 0) >= 2 || Date.now() > deadline) break;
      await got.waitFor(got.messages.length + 1, 20_000).catch(() => {});
    }
    assert.equal(summaries.reduce((n, s) => n + (s.count as number), 0), 2, "the 150 was dropped before aggregate saw it");
    assert.equal(Math.max(...summaries.map((s) => s.max as number)), 55);
    assert.equal(Math.min(...summaries.map((s) => s.min as number)), 20);
    for (const s of summaries) assert.equal(s.topic, "sensors/t1/temp");
    assert.ok(!got.messages.some((m) => m.topic.startsWith("stats/") && m.topic.includes("battery")), "only temp and humidity are aggregated");
  });

  test("the simulator's fleet runs through the pipeline without errors", async () => {
    const before = got.messages.length;
    const summary = await simulate(ex.get().url, ["--spike", "0.3"]);
    assertHealthy(summary);
    await settle(sub);
    const readings = got.messages.slice(before).filter((m) => /^sensors\/dev-[123]\/(temp|humidity|battery)$/.test(m.topic));
    // With seed 42, dev-1's very first temperature is a spike, so there is at least one.
    assert.ok(summary.spikes > 0, "seed 42 with --spike 0.3 produces spikes");
    assert.equal(readings.length, summary.sent - 6 - summary.spikes, "everything arrives but the spikes (and the statuses)");
    for (const m of readings) {
      const value = json(m.payload).value as number;
      assert.ok(value >= -40 && value <= 100, `${m.topic} ${value} passed the filter`);
    }
  });
});
