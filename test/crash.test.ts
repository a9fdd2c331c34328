/**
 * The broker must survive `kill -9` without losing an acknowledged QoS 1
 * message (README "Durability"). Runs the real CLI (dist/broker/cli.js) with
 * an LMDB data dir, SIGKILLs it while a publisher streams QoS 1 messages to an
 * offline persistent session, restarts it on the same data dir and checks
 * that every message whose PUBACK the publisher saw is delivered.
 *
 * aedes 1.2 alone writes a QoS 1 PUBACK before it stores the message;
 * wasmq's publish adapter (broker/protocol/hooks.ts, authorizePublish) stores
 * and routes a QoS 1 message first, so a PUBACK means "stored". The test kills
 * the broker in the very tick a PUBACK arrives, the tightest window, so a
 * failure here means that ordering was broken. CRASH_PUBLISHERS=n changes
 * the load.
 *
 * Also: a bad --data directory fails start-up with a clear message.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";

const PUBLISHERS = Number(process.env.CRASH_PUBLISHERS ?? 8);
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), "../broker/cli.js");
const base = mkdtempSync(path.join(tmpdir(), "wasmq-crash-"));
after(() => rmSync(base, { recursive: true, force: true }));

function writeConfig(name: string, data: string, durability: "sync" | "async"): string {
  const file = path.join(base, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({ host: "127.0.0.1", port: 0, ws: false, data, persistence: "lmdb", durability, plugins: [], sys: false, log: { level: "info" } }),
  );
  return file;
}

interface Running {
  child: ChildProcess;
  port: number;
}

async function startCli(config: string): Promise<Running> {
  const child = spawn(process.execPath, [CLI, "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start:\n${out}\n${err}`)), 15_000);
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code}:\n${out}\n${err}`));
    });
  });
  return { child, port };
}

async function kill9(r: Running): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  r.child.kill("SIGKILL");
  await once(r.child, "exit");
}

describe("kill -9 of the broker", () => {
  for (const durability of ["sync", "async"] as const) {
    test(`no acknowledged QoS 1 message is lost (durability ${durability})`, async (t) => {
      const data = path.join(base, `data-${durability}`);
      const config = writeConfig(`crash-${durability}`, data, durability);
      const clients: mqtt.MqttClient[] = [];
      let broker = await startCli(config);
      t.after(async () => {
        for (const c of clients) c.end(true);
        await kill9(broker);
      });

      const url = () => `mqtt://127.0.0.1:${broker.port}`;
      const sub = await mqtt.connectAsync(url(), { clientId: "crash-sub", clean: false, reconnectPeriod: 0 });
      clients.push(sub);
      await sub.subscribeAsync("crash/t", { qos: 1 });
      await sub.endAsync();

      // several publishers, each with one QoS 1 message in flight at a time
      let stop = false;
      const acked = new Set<string>();
      const publishers = await Promise.all(
        Array.from({ length: PUBLISHERS }, (_, p) => p).map(async (p) => {
          const c = await mqtt.connectAsync(url(), { clientId: `crash-pub-${p}`, reconnectPeriod: 0 });
          clients.push(c);
          return c;
        }),
      );
      const loops = publishers.map(async (c, p) => {
        for (let i = 0; !stop; i++) {
          const payload = `${p}:${i}`;
          try {
            await c.publishAsync("crash/t", payload, { qos: 1 });
          } catch {
            return; // the broker died
          }
          if (stop) return;
          acked.add(payload);
          if (acked.size >= 200) {
            // kill in the same tick as the PUBACK arrives: the tightest window
            stop = true;
            broker.child.kill("SIGKILL");
            return;
          }
        }
      });
      while (!stop) await new Promise((r) => setTimeout(r, 5));
      const ackedAtKill = new Set(acked);
      await kill9(broker);
      // publishes in flight at the kill never settle (mqtt.js keeps them for a
      // reconnect): abandon the loops
      void loops;
      for (const c of publishers) c.end(true);

      broker = await startCli(config);
      const received = new Set<string>();
      const sub2 = mqtt.connect(url(), { clientId: "crash-sub", clean: false, reconnectPeriod: 0 });
      clients.push(sub2);
      sub2.on("message", (_topic, payload) => received.add(payload.toString()));
      await new Promise<void>((resolve, reject) => {
        sub2.once("connect", () => resolve());
        sub2.once("error", reject);
      });
      // Wait until every acknowledged message is back, or the queue has stopped
      // draining for a while (a loaded machine can take seconds to start replaying).
      let lastSize = -1;
      let lastChange = Date.now();
      while (![...ackedAtKill].every((m) => received.has(m))) {
        if (received.size !== lastSize) {
          lastSize = received.size;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > 5_000) {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const lost = [...ackedAtKill].filter((m) => !received.has(m));
      assert.deepEqual(lost, [], `${lost.length} of ${ackedAtKill.size} acknowledged messages lost after kill -9`);
    });
  }

  test("a --data path under a regular file fails start-up with a clear message", async () => {
    const file = path.join(base, "a-file");
    writeFileSync(file, "x");
    const config = writeConfig("bad-data", path.join(file, "data"), "sync");
    const child = spawn(process.execPath, [CLI, "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const [code] = (await once(child, "exit")) as [number];
    assert.equal(code, 2, err);
    assert.match(err, /cannot open LMDB data directory ".*a-file\/data"/);
    assert.match(err, /ENOTDIR|not a directory/);
  });
});
