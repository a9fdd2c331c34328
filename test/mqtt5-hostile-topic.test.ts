// An MQTT 5 QoS 1 PUBLISH whose topic has more levels than the router can
// split (qlobber throws "too many words"): the v5 layer's "no matching
// subscribers" check must not throw inside the parser (it ended the broker
// process, found by the fuzz suite); the publisher is refused and closed as
// for any too-deep topic, and the broker serves the next client.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startTestBroker } from "./helpers.js";
import { Raw5 } from "./mqtt5-raw.js";

test("a v5 QoS 1 PUBLISH to a topic too deep for the router closes that client only", { timeout: 30_000 }, async () => {
  const broker = await startTestBroker();
  const port = broker.port("tcp");
  try {
    const { c } = await Raw5.connect(port, { clientId: "too-deep" });
    c.send({ cmd: "publish", topic: "a/".repeat(300) + "a", payload: Buffer.from("x"), qos: 1, messageId: 7 });
    await c.next("never", () => false).catch(() => {}); // resolves when the broker closes the connection
    assert.equal(c.closed, true, "the publisher was closed");

    // the broker is still up and routes for others
    const { c: sub } = await Raw5.connect(port, { clientId: "after-sub" });
    sub.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "ok/#", qos: 1 }] });
    await sub.next("suback");
    const { c: pub } = await Raw5.connect(port, { clientId: "after-pub" });
    pub.send({ cmd: "publish", topic: "ok/1", payload: Buffer.from("fine"), qos: 1, messageId: 1 });
    const ack = await pub.next("puback");
    assert.equal(ack.reasonCode ?? 0, 0);
    const got = await sub.next("publish");
    assert.equal(String(got.payload), "fine");
    pub.socket.destroy();
    sub.socket.destroy();
  } finally {
    await broker.stop();
  }
});
