// The MQTT 3.1.1 conformance suites (conformance-*.test.ts) share this: one
// broker per test file (LMDB persistence, $SYS every second), reached by its
// URL (`broker.url`) or raw TCP port, and a few helpers.
import { after, before } from "node:test";
import { startTestBroker, type TestBroker } from "./helpers.js";
import { mqttString } from "./ops-raw-mqtt.js";

// Live bindings: set by the before() hook that useConformanceBroker() registers.
export let broker: TestBroker;
export let port: number;

/** Start the suite's broker before its tests and stop it after them. */
export function useConformanceBroker(): void {
  before(async () => {
    broker = await startTestBroker({ persistence: "lmdb", sys: { intervalSec: 1 } });
    port = broker.port("tcp");
  });
  after(() => broker.stop());
}

/** A client id no other test uses. */
export const id = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

/** The variable header and payload of a QoS 0 PUBLISH. */
export const publishBody = (topic: Buffer | string, payload = "x") => Buffer.concat([mqttString(topic), Buffer.from(payload)]);
