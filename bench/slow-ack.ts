/**
 * Durable QoS 1 with ordinary subscribers (issue #17, part "hold5";
 * bench/README.md): what the write hold does when the persistent subscriber
 * is not the bench's generator but a real client in another process —
 * mqtt.js, mqtt.js on a busy event loop, Mosquitto's `mosquitto_sub`,
 * Python paho — for each write-hold setting, interleaved.
 *
 *   node dist/bench/slow-ack.js [--modes adaptive,fixed,0] [--subs mqttjs,loaded,mosquitto,paho]
 *        [--count 3000] [--window 64] [--reps 3] [--baseline DIR] [--ref MODE] [--out FILE]
 *
 * Per run: a fresh wasmq broker in this process (LMDB in a temp dir,
 * durability sync, no plugins: the store is what is measured) with the mode's
 * `writeHold` / `writeHoldMs`; one persistent subscriber process; one mqtt.js
 * publisher process sending COUNT QoS 1 messages of ~10 B, WINDOW in flight.
 * Reported: the publisher's PUBACK latency (p50/p99, ms) and rate; the
 * broker's CPU per message (this process, over the publisher's run); the
 * subscriber's ack latency as the broker sees it (the delivery's
 * outgoingUpdate — just before it is written to the socket — to its
 * outgoingClearMessageId, p50/p90/p99 ms); what the hold did (held, dropped
 * unwritten, written after the hold, written first). Modes: `adaptive` and
 * `fixed` (writeHoldMs 5), `0` (no hold), `base` (the --baseline build's
 * default: /work/base5 holds every delivery 5 ms).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

type Mode = "adaptive" | "fixed" | "0" | "base";
type SubKind = "mqttjs" | "loaded" | "mosquitto" | "paho";

const here = path.dirname(fileURLToPath(import.meta.url));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const modes = arg("modes", "adaptive,fixed,0").split(",") as Mode[];
const subs = arg("subs", "mqttjs,loaded,mosquitto,paho").split(",") as SubKind[];
const COUNT = Number(arg("count", "3000"));
const WINDOW = Number(arg("window", "64"));
const REPS = Number(arg("reps", "3"));
const baseline = arg("baseline", "");
const out = arg("out", "");
if (modes.includes("base") && !baseline) throw new Error("--modes base needs --baseline DIR (a built checkout)");

const PAHO = `
import sys, threading
import paho.mqtt.client as mqtt
host, port, topic, count, cid = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
n = 0
def on_connect(c, u, f, rc): c.subscribe(topic, 1)
def on_message(c, u, m):
    global n
    n += 1
    if n == count: threading.Timer(0.2, c.disconnect).start()
c = mqtt.Client(client_id=cid, clean_session=False)
c.on_connect = on_connect
c.on_message = on_message
c.connect(host, port)
c.loop_forever()
`;

interface Run {
  rep: number;
  sub: SubKind;
  mode: Mode;
  msgsPerSec: number;
  pubackP50: number;
  pubackP99: number;
  cpuUsPerMsg: number;
  ackP50: number;
  ackP90: number;
  ackP99: number;
  acks: number;
  held: number;
  dropped: number;
  written: number;
  writtenFirst: number;
}

function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

function startSubscriber(kind: SubKind, port: number, topic: string, clientId: string): ChildProcess {
  const url = `mqtt://127.0.0.1:${port}`;
  const opts = { stdio: ["ignore", "ignore", "inherit"] as ["ignore", "ignore", "inherit"] };
  switch (kind) {
    case "mqttjs":
      return spawn(process.execPath, [path.join(here, "slow-ack-clients.js"), "sub", url, topic, String(COUNT), clientId], opts);
    case "loaded":
      return spawn(process.execPath, [path.join(here, "slow-ack-clients.js"), "sub-loaded", url, topic, String(COUNT), clientId], opts);
    case "mosquitto":
      return spawn("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(port), "-i", clientId, "-c", "-q", "1", "-t", topic, "-C", String(COUNT)], opts);
    case "paho":
      return spawn("/usr/bin/python3", ["-c", PAHO, "127.0.0.1", String(port), topic, String(COUNT), clientId], opts);
  }
}

function runPublisher(port: number, topic: string): Promise<{ count: number; elapsedMs: number; pubackMs: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, "slow-ack-clients.js"), "pub", `mqtt://127.0.0.1:${port}`, topic, String(COUNT), String(WINDOW)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(text) as { count: number; elapsedMs: number; pubackMs: number[] }) : reject(new Error(`publisher exited ${code}`))));
  });
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Broker {
  aedes: { clients: Record<string, { subscriptions?: Record<string, unknown> }> };
  persistence: { persistence: { asyncPersistence: Record<string, unknown> & { holdFigures?(): Record<string, number> } } };
  port(kind: "tcp"): number;
  close(): Promise<void>;
}

async function startTarget(mode: Mode, data: string): Promise<Broker> {
  const root = mode === "base" ? path.resolve(baseline, "dist") : path.resolve(here, "..");
  const { parseRawConfig, resolveConfig } = (await import(path.join(root, "broker/config.js"))) as {
    parseRawConfig(raw: unknown, source: string): unknown;
    resolveConfig(raw: unknown, file: null): unknown;
  };
  const { startBroker } = (await import(path.join(root, "broker/server.js"))) as { startBroker(c: unknown, o: unknown): Promise<Broker> };
  const { pino } = await import("pino");
  const hold = mode === "base" ? {} : mode === "0" ? { writeHoldMs: 0 } : { writeHoldMs: 5, writeHold: mode };
  const raw = parseRawConfig(
    { host: "127.0.0.1", port: 0, ws: false, data, persistence: "lmdb", durability: "sync", allowAnonymous: true, log: { level: "silent" }, metrics: false, sys: false, plugins: [], ...hold },
    `slow-ack ${mode}`,
  );
  return startBroker(resolveConfig(raw, null), { logger: pino({ level: "silent" }) });
}

async function oneRun(rep: number, sub: SubKind, mode: Mode): Promise<Run> {
  const data = mkdtempSync(path.join(tmpdir(), "wasmq-slow-ack-"));
  const broker = await startTarget(mode, data);
  const clientId = `slow-ack-sub-${sub}`;
  const topic = `slow/${sub}/${rep}`;
  // The subscriber's ack latency as the broker sees it: outgoingUpdate (the delivery is numbered, then written) → outgoingClearMessageId.
  const store = broker.persistence.persistence.asyncPersistence;
  const sentAt = new Map<number, number>();
  const ackMs: number[] = [];
  const update = store.outgoingUpdate as (c: { id: string }, p: { messageId?: number }) => Promise<void>;
  const clear = store.outgoingClearMessageId as (c: { id: string }, p: { messageId?: number }) => Promise<unknown>;
  store.outgoingUpdate = (c: { id: string }, p: { messageId?: number }) => {
    if (c.id === clientId && p.messageId !== undefined) sentAt.set(p.messageId, performance.now());
    return update.call(store, c, p);
  };
  store.outgoingClearMessageId = (c: { id: string }, p: { messageId?: number }) => {
    const t = c.id === clientId && p.messageId !== undefined ? sentAt.get(p.messageId) : undefined;
    if (t !== undefined) {
      ackMs.push(performance.now() - t);
      sentAt.delete(p.messageId!);
    }
    return clear.call(store, c, p);
  };
  const port = broker.port("tcp");
  const child = startSubscriber(sub, port, topic, clientId);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    await until(() => broker.aedes.clients[clientId]?.subscriptions?.[topic] !== undefined, `${sub} subscribed`);
    const before = store.holdFigures?.() ?? {};
    const cpu0 = process.cpuUsage();
    const pub = await runPublisher(port, topic);
    const cpu = process.cpuUsage(cpu0);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    const after = store.holdFigures?.() ?? {};
    const d = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    const puback = Float64Array.from(pub.pubackMs).sort();
    const acks = Float64Array.from(ackMs).sort();
    return {
      rep,
      sub,
      mode,
      msgsPerSec: (pub.count * 1000) / pub.elapsedMs,
      pubackP50: quantile(puback, 0.5),
      pubackP99: quantile(puback, 0.99),
      cpuUsPerMsg: (cpu.user + cpu.system) / pub.count,
      ackP50: quantile(acks, 0.5),
      ackP90: quantile(acks, 0.9),
      ackP99: quantile(acks, 0.99),
      acks: acks.length,
      held: d("held"),
      dropped: d("droppedUnwritten"),
      written: d("written"),
      writtenFirst: d("writtenFirst"),
    };
  } finally {
    child.kill();
    await exited;
    await broker.close();
    rmSync(data, { recursive: true, force: true });
  }
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : "–");
const runs: Run[] = [];
for (let rep = 1; rep <= REPS; rep++) {
  for (const sub of subs) {
    // rotate the modes' order per repetition so drift hits each alike
    const order = modes.map((_, i) => modes[(i + rep - 1) % modes.length]!);
    for (const mode of order) {
      const r = await oneRun(rep, sub, mode);
      runs.push(r);
      process.stderr.write(
        `rep ${rep} ${sub.padEnd(9)} ${mode.padEnd(8)} ${f1(r.msgsPerSec).padStart(8)} msg/s  PUBACK p50 ${f1(r.pubackP50)} p99 ${f1(r.pubackP99)} ms  ` +
          `CPU ${f1(r.cpuUsPerMsg)} µs/msg  ack p50 ${f1(r.ackP50)} p90 ${f1(r.ackP90)} p99 ${f1(r.ackP99)} ms (${r.acks})  ` +
          `held ${r.held} dropped ${r.dropped} written ${r.written} first ${r.writtenFirst}\n`,
      );
    }
  }
}

console.log(`\n| subscriber | mode | msg/s | publisher PUBACK p50 / p99 ms | broker CPU µs/msg | sub ack p50 / p90 / p99 ms | held | dropped unwritten | written after hold | written first |`);
console.log(`|---|---|---|---|---|---|---|---|---|---|`);
for (const sub of subs) {
  for (const mode of modes) {
    const rs = runs.filter((r) => r.sub === sub && r.mode === mode);
    const m = (k: keyof Run) => median(rs.map((r) => r[k] as number));
    console.log(
      `| ${sub} | ${mode} | ${f1(m("msgsPerSec"))} | ${f1(m("pubackP50"))} / ${f1(m("pubackP99"))} | ${f1(m("cpuUsPerMsg"))} | ${f1(m("ackP50"))} / ${f1(m("ackP90"))} / ${f1(m("ackP99"))} | ` +
        `${m("held")} | ${m("dropped")} | ${m("written")} | ${m("writtenFirst")} |`,
    );
  }
}
// Paired by repetition (runs seconds apart): each mode against the reference mode.
const ref = arg("ref", modes.includes("fixed") ? "fixed" : modes[0]!) as Mode;
console.log(`\n| subscriber | mode / ${ref} | msg/s, paired: median (min–max) | broker CPU per msg, paired | publisher PUBACK p50, paired |`);
console.log(`|---|---|---|---|---|`);
const spread = (xs: number[]) => `${f1(median(xs))}× (${f1(Math.min(...xs))}–${f1(Math.max(...xs))})`;
for (const sub of subs) {
  for (const mode of modes) {
    if (mode === ref) continue;
    const pairs: Array<[Run, Run]> = [];
    for (let rep = 1; rep <= REPS; rep++) {
      const a = runs.find((r) => r.sub === sub && r.mode === mode && r.rep === rep);
      const b = runs.find((r) => r.sub === sub && r.mode === ref && r.rep === rep);
      if (a && b) pairs.push([a, b]);
    }
    console.log(
      `| ${sub} | ${mode} / ${ref} | ${spread(pairs.map(([a, b]) => a.msgsPerSec / b.msgsPerSec))} | ${spread(pairs.map(([a, b]) => a.cpuUsPerMsg / b.cpuUsPerMsg))} | ${spread(pairs.map(([a, b]) => a.pubackP50 / b.pubackP50))} |`,
    );
  }
}
if (out) writeFileSync(out, JSON.stringify({ count: COUNT, window: WINDOW, runs }, null, 2));
