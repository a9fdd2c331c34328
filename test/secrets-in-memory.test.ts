// Passwords do not outlive CONNECT in the broker's memory. A heap dump or core
// file of a running broker must not hold connected clients' passwords: once
// the connect hook (and any AUTH exchange) is done, every Buffer holding the
// secret is zeroed and dropped.
//
// How it is observed: a real broker runs as a child process (the CLI), real
// mqtt.js clients connect with unique random passwords, and the test reads the
// child's whole address space through /proc/<pid>/mem (permitted to a parent
// process) and searches it for each password's bytes. A V8 heap snapshot is not
// enough: it records strings but not the bytes of Buffers, ArrayBuffers or a
// Wasm memory, which is where mqtt-packet, aedes and the plugin host keep a
// password.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { MqttClient } from "mqtt";
import { CliBroker, killSpawned, writeConfig } from "./broker-support.js";
import { connect, end, native, tempDir, wasm } from "./helpers.js";

const { hashPassword } = (await import(native("auth"))) as { hashPassword: (password: string, iterations?: number) => string };

/** A password of printable ASCII that no other code or data could contain by chance. */
function uniquePassword(): Buffer {
  const b = randomBytes(28);
  for (let i = 0; i < b.length; i++) b[i] = 0x61 + (b[i]! % 26);
  return b;
}

interface Found {
  index: number;
  address: string;
  region: string;
  /** The bytes around the match (printable ASCII, others as "."), to tell what holds it. */
  context: string;
}

/** Search every readable mapping of process `pid` for each needle; returns where each was found. */
function scanProcessMemory(pid: number, needles: Buffer[]): Found[] {
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8").trim().split("\n");
  const fd = openSync(`/proc/${pid}/mem`, "r");
  const found: Found[] = [];
  const longest = Math.max(...needles.map((n) => n.length));
  const chunk = Buffer.allocUnsafe(4 << 20);
  try {
    for (const line of maps) {
      const [range, perms, , , , ...rest] = line.split(/\s+/);
      const region = rest.join(" ");
      if (!perms!.startsWith("r") || region === "[vvar]" || region === "[vsyscall]") continue;
      const [start, end] = range!.split("-").map((h) => parseInt(h, 16)) as [number, number];
      // Overlap consecutive reads by the longest needle so a match across a chunk edge is seen.
      for (let at = start; at < end; at += chunk.length - longest) {
        const want = Math.min(chunk.length, end - at);
        let got: number;
        try {
          got = readSync(fd, chunk, 0, want, at);
        } catch {
          break; // a mapping that went away or cannot be read (guard pages)
        }
        const view = chunk.subarray(0, got);
        needles.forEach((needle, index) => {
          let i = view.indexOf(needle);
          while (i !== -1) {
            const around = view.subarray(Math.max(0, i - 48), i + needle.length + 16);
            const context = Array.from(around, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : ".")).join("");
            found.push({ index, address: `0x${(at + i).toString(16)}`, region: `${range} ${perms} ${region}`, context });
            i = view.indexOf(needle, i + 1);
          }
        });
        if (got < want || at + want >= end) break;
      }
    }
  } finally {
    closeSync(fd);
  }
  return found;
}

describe("secrets in memory: a running broker keeps no password of a connected client", { skip: process.platform !== "linux" && "needs /proc" }, () => {
  const passwords = [uniquePassword(), uniquePassword(), uniquePassword(), uniquePassword()];
  const users = passwords.map((p, i) => ({ username: `user${i}`, hash: hashPassword(p.toString("latin1"), 1000) }));
  const clients: MqttClient[] = [];
  let broker: CliBroker;
  let url: string;

  before(async () => {
    const dir = tempDir("wasmq-secrets-");
    const config = writeConfig(dir, "wasmq.json", {
      persistence: "memory",
      sys: false,
      plugins: [{ name: "auth", wasm: wasm("auth"), config: { users, allowAnonymous: false }, limits: { fuel: 250_000_000 } }],
    });
    // Node copies each socket read out of its 64 KiB read buffer into a
    // right-sized one and frees the big one, so the bytes of every read also
    // lie in freed malloc memory until it is reused: nothing the broker holds
    // (JS cannot reach it), but a scan of the process sees it. glibc's
    // MALLOC_PERTURB_ overwrites memory as it is freed (broker/OPERATIONS.md,
    // "Client secrets in memory"), so what this test finds is memory the
    // broker still holds.
    broker = new CliBroker(["--config", config, "--port", "0", "--ws-port", "0"], { MALLOC_PERTURB_: "165" });
    url = `mqtt://127.0.0.1:${(await broker.ready()).tcp}`;
  });

  after(async () => {
    await end(...clients);
    await killSpawned();
  });

  test("the passwords of clients that connected and stay connected are nowhere in the broker's memory", async () => {
    // 3.1.1 and 5, clean and persistent sessions; the last one also takes over the first one's session.
    clients.push(await connect(url, { clientId: "c0", username: "user0", password: passwords[0]!, clean: false }));
    clients.push(await connect(url, { clientId: "c1", username: "user1", password: passwords[1]!, protocolVersion: 5 }));
    clients.push(await connect(url, { clientId: "c2", username: "user2", password: passwords[2]! }));
    clients.push(await connect(url, { clientId: "c0", username: "user3", password: passwords[3]!, clean: false }));
    // Traffic after the CONNECTs, so the plugin host has written other records
    // since; the retained payload is a control: bytes a client sent that the
    // broker does keep (in a Buffer), which the scan must find.
    const kept = uniquePassword();
    await new Promise<void>((resolve, reject) =>
      clients[2]!.publish("t/secret-test", kept, { qos: 1, retain: true }, (err) => (err ? reject(err) : resolve())),
    );
    const control = scanProcessMemory(broker.child.pid!, [kept]);
    assert.ok(control.length > 0, "the scan must see bytes the broker holds in a Buffer (the retained payload)");

    const found = scanProcessMemory(broker.child.pid!, passwords);
    assert.deepEqual(
      found.map((f) => `password ${f.index} at ${f.address} in ${f.region}: ${f.context}`),
      [],
      "no connected client's password may remain in the broker's memory",
    );
  });
});
