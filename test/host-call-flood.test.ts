// Issue #11: one hostile plugin must not take the broker down through its host
// imports. The plugin's onPublish loops on publish("flood/x", <1 MiB>) — before
// the fix the host copied every payload without charge or cap, and one message
// took the broker past 2.9 GB RSS with its event loop blocked.
//
// The broker runs as a child process (the real CLI, default plugin limits:
// fuel 100 M, 256 pages, caps at their defaults) so its memory can be measured
// on its own: VmHWM (peak resident set) from /proc/<pid>/status, before and
// after the floods.
//
// The bound: the per-call cap holds at most maxPublishBytesPerCall (4 MiB) of
// queued publishes, the plugin's own memory is capped at 256 pages (16 MiB),
// and a trapped instance is replaced by one fresh memory; V8 may keep a few
// such buffers before it collects them. 256 MiB over the baseline leaves
// room for GC timing on a loaded CI machine and is an order of magnitude
// below what the unaccounted flood reached (2.9 GB).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { buildFixture } from "./fixtures.js";
import { CLI, collect, end, subscribe, tempDir } from "./helpers.js";

const FLOODS = 3;
const RSS_GROWTH_BOUND_KB = 256 * 1024;

function peakRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  assert.ok(m, "VmHWM in /proc/<pid>/status");
  return Number(m[1]);
}

/** Reject after ms: the old code blocks the broker's event loop, and the test must fail rather than hang. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
    }),
  ]);
}

/** Poll until cond() holds; reject after ms (and stop polling, so a failed test does not hang). */
async function waitUntil(ms: number, what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("host-call flood: a publish-looping plugin is stopped by its caps", { timeout: 120_000 }, () => {
  const dir = tempDir("wasmq-flood-");
  let child: ChildProcess;
  let port = 0;
  let stdout = "";
  const clients: mqtt.MqttClient[] = [];

  before(async () => {
    const config = path.join(dir, "config.json");
    writeFileSync(
      config,
      JSON.stringify({
        host: "127.0.0.1",
        port: 0,
        ws: false,
        persistence: "memory",
        sys: false,
        log: { level: "info" },
        plugins: [
          {
            name: "hostile",
            wasm: await buildFixture("hostile"),
            onError: "fail-closed",
            watch: false,
            // Keep the breaker out of it: every flood must reach the plugin and trap.
            breaker: { failures: 100_000, windowMs: 1000, cooldownMs: 1000 },
          },
        ],
      }),
    );
    child = spawn(process.execPath, [CLI, "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const listening = /mqtt:\/\/127\.0\.0\.1:(\d+)/;
    await waitUntil(20_000, "broker start", () => {
      if (child.exitCode !== null) throw new Error(`broker exited: ${stdout}${stderr}`);
      return listening.test(stdout);
    });
    port = Number(listening.exec(stdout)![1]);
  });

  after(async () => {
    for (const c of clients) c.end(true);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test(`${FLOODS} flooding messages each trap (host-limit); peak RSS grows < 256 MiB; another client's round trips complete meanwhile`, async () => {
    const url = `mqtt://127.0.0.1:${port}`;
    const open = async (clientId: string) => {
      const c = await mqtt.connectAsync(url, { clientId, reconnectPeriod: 0 });
      clients.push(c);
      return c;
    };
    const other = await open("bystander");
    const got = collect(other);
    // flood/# too: a flood message that got out would arrive here.
    await subscribe(other, ["rt/#", "flood/#"], 1);
    const attacker = await open("attacker");
    const baseline = peakRssKb(child.pid!);
    // Guard the shared machine: a broker that runs away (the unfixed host) is killed at 1 GiB.
    let runaway = 0;
    const guard = setInterval(() => {
      try {
        const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0);
        if (rss > 1024 * 1024) {
          runaway = rss;
          child.kill("SIGKILL");
        }
      } catch {
        // the process is gone
      }
    }, 50);
    guard.unref();
    after(() => clearInterval(guard));

    const floods = Array.from({ length: FLOODS }, (_, i) => within(60_000, `flood ${i} PUBACK`, attacker.publishAsync("flood/publish", "go", { qos: 1 })));
    for (const f of floods) f.catch(() => {}); // reported by Promise.all below, not as unhandled if a round trip fails first
    // Round trips through the broker, interleaved with the floods on the event loop.
    for (let i = 0; i < 5; i++) {
      await within(30_000, `round trip ${i}`, other.publishAsync(`rt/${i}`, `${i}`, { qos: 1 }));
      await within(30_000, `round trip ${i} delivery`, got.waitFor(i + 1, 30_000));
    }
    await Promise.all(floods);
    assert.equal(runaway, 0, `the broker ran away to ${(runaway / 1024).toFixed(0)} MiB and was killed`);
    assert.deepEqual(
      got.messages.map((m) => m.topic),
      ["rt/0", "rt/1", "rt/2", "rt/3", "rt/4"],
    );

    // Each flood was stopped by the per-call byte cap and logged with its trap kind.
    await waitUntil(10_000, `${FLOODS} host-limit trap log lines in\n${stdout.slice(-2000)}`, () => (stdout.match(/"trap":"host-limit"/g) ?? []).length >= FLOODS);
    assert.match(stdout, /published more than 4194304 bytes in one call \(limits\.maxPublishBytesPerCall\)/);

    const peak = peakRssKb(child.pid!);
    assert.ok(peak - baseline < RSS_GROWTH_BOUND_KB, `peak RSS grew ${((peak - baseline) / 1024).toFixed(1)} MiB (baseline ${(baseline / 1024).toFixed(1)} MiB)`);
    console.log(`# flood: baseline VmHWM ${(baseline / 1024).toFixed(1)} MiB, after ${FLOODS} floods ${(peak / 1024).toFixed(1)} MiB`);
    await end(attacker, other);
    clients.length = 0;
  });
});
