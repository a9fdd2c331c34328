// Prometheus metrics on the admin port: broker figures (clients, messages by
// QoS, bytes, retained, queues) and per-plugin figures (calls, sampled call
// time, verdicts, traps, fuel, breaker, reloads), scraped over HTTP from a
// broker that real clients and the compiled probe plugin drive.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildFixture } from "./fixtures.js";
import { collect, connect, end, startTestBroker, subscribe, type TestBroker } from "./helpers.js";
import { scrape, value } from "./metrics-support.js";

describe("metrics", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  before(async () => {
    const probe = await buildFixture("probe");
    broker = await startTestBroker({
      metrics: { port: 0, timingSampleEvery: 1 },
      plugins: [
        {
          name: "probe",
          wasm: probe,
          onError: "fail-open",
          watch: false,
          limits: { fuel: 1_000_000, memoryPages: 32 },
          breaker: { failures: 3, windowMs: 60_000, cooldownMs: 60_000 },
        },
      ],
    });
  });
  after(() => broker.stop());

  test("a fresh broker reports zeros, build info and process metrics", async () => {
    const m = await scrape(broker);
    assert.equal(value(m, 'wasmq_messages_received_total{qos="0"}'), 0);
    assert.equal(value(m, "wasmq_clients_connected"), 0);
    assert.equal(value(m, "wasmq_retained_messages"), 0);
    assert.equal(value(m, "wasmq_queued_messages"), 0);
    assert.equal(value(m, 'wasmq_plugin_breaker_state{plugin="probe",state="closed"}'), 1);
    assert.equal(value(m, 'wasmq_plugin_enabled{plugin="probe"}'), 1);
    assert.ok([...m.keys()].some((k) => k.startsWith("wasmq_build_info{version=")));
    assert.ok(m.has("process_cpu_user_seconds_total"), "default Node/process metrics are included");
  });

  test("traffic: clients, messages by QoS in and out, bytes, retained, per-plugin calls, verdicts and sampled call times", async () => {
    const sub = await connect(broker.url, { clientId: "metrics-sub" });
    const got = collect(sub);
    await subscribe(sub, ["ok/#", "drop/#"], 1);
    const pub = await connect(broker.url, { clientId: "metrics-pub" });
    await pub.publishAsync("ok/a", "0", { qos: 0 });
    await pub.publishAsync("ok/a", "0", { qos: 0 });
    for (let i = 0; i < 3; i++) await pub.publishAsync("ok/b", "1", { qos: 1 });
    await pub.publishAsync("ok/c", "2", { qos: 2 });
    await pub.publishAsync("ok/kept", "r", { qos: 1, retain: true });
    await pub.publishAsync("drop/me", "gone", { qos: 1 });
    await got.waitFor(7);

    const m = await scrape(broker);
    assert.equal(value(m, "wasmq_clients_connected"), 2);
    assert.equal(value(m, 'wasmq_messages_received_total{qos="0"}'), 2);
    assert.equal(value(m, 'wasmq_messages_received_total{qos="1"}'), 5);
    assert.equal(value(m, 'wasmq_messages_received_total{qos="2"}'), 1);
    // The subscriber's QoS 1 subscription: QoS 0 stays 0, QoS 2 is delivered at 1; "drop/me" goes nowhere.
    assert.equal(value(m, 'wasmq_messages_sent_total{qos="0"}'), 2);
    assert.equal(value(m, 'wasmq_messages_sent_total{qos="1"}'), 5);
    assert.equal(value(m, 'wasmq_messages_sent_total{qos="2"}'), 0);
    assert.ok(value(m, "wasmq_bytes_received_total") > 100);
    assert.ok(value(m, "wasmq_bytes_sent_total") > 100);
    assert.ok(value(m, "wasmq_packets_received_total") >= 8 + 2 + 1); // publishes, CONNECTs, SUBSCRIBE, acks...
    assert.equal(value(m, "wasmq_retained_messages"), 1);
    assert.equal(value(m, 'wasmq_connects_total{result="accepted"}'), 2);

    assert.equal(value(m, 'wasmq_plugin_calls_total{plugin="probe",hook="publish"}'), 8);
    assert.equal(value(m, 'wasmq_plugin_calls_total{plugin="probe",hook="deliver"}'), 7);
    assert.equal(value(m, 'wasmq_plugin_calls_total{plugin="probe",hook="connect"}'), 2);
    assert.equal(value(m, 'wasmq_plugin_verdicts_total{plugin="probe",verdict="drop"}'), 1);
    // continues: 7 publishes (one dropped), 7 deliveries, 2 connects, 2 subscribed filters
    assert.equal(value(m, 'wasmq_plugin_verdicts_total{plugin="probe",verdict="continue"}'), 7 + 7 + 2 + 2);
    assert.equal(value(m, 'wasmq_plugin_calls_total{plugin="probe",hook="subscribe"}'), 2);
    // Sampling every call here: the histogram counts each publish call, each taking some time.
    assert.equal(value(m, 'wasmq_plugin_call_duration_seconds_count{plugin="probe",hook="publish"}'), 8);
    assert.ok(value(m, 'wasmq_plugin_call_duration_seconds_sum{plugin="probe",hook="publish"}') > 0);
    assert.equal(value(m, 'wasmq_plugin_call_duration_seconds_bucket{le="+Inf",plugin="probe",hook="publish"}'), 8);
    await end(sub, pub);
  });

  test("faults: traps by kind, fuel exhaustions, failures, the breaker opening, and a reload closing it again", async () => {
    const pub = await connect(broker.url);
    await pub.publishAsync("fault/abort", "x", { qos: 1 });
    await pub.publishAsync("fault/loop", "x", { qos: 1 });
    let m = await scrape(broker);
    assert.equal(value(m, 'wasmq_plugin_traps_total{plugin="probe",kind="abort"}'), 1);
    assert.equal(value(m, 'wasmq_plugin_traps_total{plugin="probe",kind="fuel"}'), 1);
    assert.equal(value(m, 'wasmq_plugin_fuel_exhaustions_total{plugin="probe"}'), 1);
    assert.equal(value(m, 'wasmq_plugin_restarts_total{plugin="probe"}'), 2);
    assert.equal(value(m, 'wasmq_plugin_breaker_state{plugin="probe",state="closed"}'), 1);

    await pub.publishAsync("fault/unreachable", "x", { qos: 1 }); // the third failure in the window
    m = await scrape(broker);
    assert.equal(value(m, 'wasmq_plugin_breaker_state{plugin="probe",state="open"}'), 1);
    assert.equal(value(m, 'wasmq_plugin_breaker_state{plugin="probe",state="closed"}'), 0);
    assert.ok(value(m, 'wasmq_plugin_failures_total{plugin="probe"}') >= 3);

    const res = await fetch(`${broker.admin!.url}/plugins/probe/reload`, { method: "POST", headers: { "x-wasmq-request": "1" } });
    assert.equal(res.status, 200);
    m = await scrape(broker);
    assert.equal(value(m, 'wasmq_plugin_reloads_total{plugin="probe",result="ok"}'), 1);
    assert.equal(value(m, 'wasmq_plugin_reloads_total{plugin="probe",result="failed"}'), 0);
    assert.equal(value(m, 'wasmq_plugin_breaker_state{plugin="probe",state="closed"}'), 1, "a reload resets the breaker");
    await end(pub);
  });

  test("limit rejections and protocol errors are counted", async () => {
    const { RawClient } = await import("./ops-raw-mqtt.js");
    const { client } = await RawClient.connect(broker.port("tcp"));
    client.write({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "a+", qos: 0 }] });
    await client.waitClosed();
    const m = await scrape(broker);
    assert.equal(value(m, "wasmq_protocol_errors_total"), 1);
    assert.equal(value(m, 'wasmq_limit_rejections_total{limit="maxPacketSize"}'), 0);
  });

  test("each broker has its own registry: a second broker in the same process starts from zero", async () => {
    const other = await startTestBroker({ persistence: "memory", metrics: { port: 0 } });
    try {
      const m = await scrape(other);
      assert.equal(value(m, 'wasmq_messages_received_total{qos="1"}'), 0);
      assert.equal([...m.keys()].filter((k) => k.startsWith("wasmq_plugin_")).length, 0, "no plugins there");
      // The memory store cannot count queued messages: no figure rather than a false 0.
      assert.equal(m.has("wasmq_queued_messages"), false, "wasmq_queued_messages is LMDB only");
      const mine = await scrape(broker);
      assert.ok(value(mine, 'wasmq_messages_received_total{qos="1"}') > 0);
    } finally {
      await other.stop();
    }
  });
});
