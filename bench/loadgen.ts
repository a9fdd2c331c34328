/**
 * The load generator, in its own process (forked by run.ts). Publishers and
 * subscribers live in this one process so one clock (performance.now) stamps
 * and reads every message: latency = receive time − send time stamped in the
 * payload.
 *
 * Closed loop (rate = null): at most `window` deliveries outstanding (sent, not
 * yet received by every subscriber), refilled once half of them arrived: this
 * saturates the broker without letting its queues grow without bound. Fixed
 * rate: publish `rate` messages/s in 1 ms batches. QoS 1 in both: at most `publisherWindow` unacknowledged PUBLISHes per
 * publisher, PUBACK advances it; subscribers PUBACK every QoS 1 delivery.
 *
 * Phases: connect → warm-up → (orchestrator snapshots the broker's CPU) →
 * measure → drain (every acknowledged QoS 1 message must arrive) → result.
 */
// first, before mqtt-packet loads `debug`: the handshake's packets are parsed with it, and
// a disabled debug logger allocates per call (broker/quiet-debug.ts)
import "../broker/quiet-debug.js";
import { writeFileSync } from "node:fs";
import { skipLengthPrefixed, type FrameHandler } from "./frame-scanner.js";
import { BENCH_TOPIC_FILTER, benchTopic } from "./plugins.js";
import { MAX_PUBLISHERS, MAX_SEQ, payloadTemplate, readStampAt, stamp, type Stamp } from "./payload.js";
import type { FromLoad, LoadResult, LoadSpec, ToLoad } from "./protocol.js";
import { encodePublish, RawClient, type PublishTemplates } from "./raw-client.js";
import { GrowableBytes, GrowableFloats, percentile } from "./stats.js";
import { TailMonitor } from "./tail.js";
import { histogramOf } from "./latency-histogram.js";

interface Publisher {
  index: number;
  client: RawClient;
  templates: PublishTemplates;
  /** The first message (the one that sets an MQTT 5 topic alias) has been sent. */
  sentFirst: boolean;
  nextSeq: number;
  inflight: number;
  nextMessageId: number;
  /** QoS 1: most unacknowledged PUBLISHes (the spec's window, within an MQTT 5 broker's Receive Maximum). */
  window: number;
  /** QoS 1: sequence number of the message carrying each packet identifier. */
  seqById: Int32Array;
  acked: GrowableBytes;
  /** Deliveries received per sequence number (all subscribers together). */
  delivered: GrowableBytes;
}

function send(msg: FromLoad): void {
  process.send!(msg);
}

const nowUs = () => performance.now() * 1000;

async function connectAll<T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> {
  // A few at a time: an auth plugin hashes a password per CONNECT.
  const out: T[] = [];
  for (let i = 0; i < n; i += 20) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 20); j++) batch.push(make(j));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function run(spec: LoadSpec, go: Promise<void>): Promise<LoadResult> {
  if (spec.publishers > MAX_PUBLISHERS) throw new Error(`at most ${MAX_PUBLISHERS} publishers`);
  const subs = spec.subscribers;
  const p2p = spec.publishers === 1;
  const protocolVersion = spec.protocol ?? 4;
  const aliases = protocolVersion === 5 && (spec.topicAliases ?? false);
  const subscribers = await connectAll(subs, async (i) => {
    const c = await RawClient.connect({
      port: spec.subscriberPort ?? spec.port,
      clientId: `bench-sub-${i}`,
      clean: !spec.persistentSubscribers,
      credentials: spec.credentials,
      protocolVersion,
      ...(aliases ? { topicAliasMaximum: 10 } : {}),
    });
    await c.subscribe(p2p ? benchTopic(0) : BENCH_TOPIC_FILTER, spec.qos);
    return c;
  });
  const payload = payloadTemplate(spec.payloadBytes);
  const publishers: Publisher[] = await connectAll(spec.publishers, async (i) => ({
    index: i,
    client: await RawClient.connect({ port: spec.port, clientId: `bench-pub-${i}`, clean: true, credentials: spec.credentials, protocolVersion }),
    templates: encodePublish(benchTopic(i), payload, spec.qos, protocolVersion, aliases ? 1 : 0),
    sentFirst: false,
    window: spec.publisherWindow,
    nextSeq: 0,
    inflight: 0,
    nextMessageId: 1,
    seqById: new Int32Array(65536).fill(-1),
    acked: new GrowableBytes(),
    delivered: new GrowableBytes(),
  }));
  // An MQTT 5 client keeps within the broker's Receive Maximum ([MQTT-3.3.4-7]); every broker alike.
  for (const pub of publishers) pub.window = Math.min(pub.window, pub.client.receiveMaximum);
  send({ type: "connected" });

  // -- counters -------------------------------------------------------------
  let sent = 0; // published messages
  let received = 0; // deliveries, first copies only
  let duplicates = 0;
  let aliasedDeliveries = 0; // MQTT 5 deliveries whose topic the broker sent as a topic alias
  let measuring = false;
  let sending = true;
  let t0Us = Infinity; // measurement start
  let t1Us = Infinity; // measurement end (duration mode: known in advance)
  let measuredSent = 0;
  let measuredReceived = 0; // deliveries of messages sent in the window
  let windowReceived = 0; // deliveries received in the window (any message)
  let windowSent = 0;
  let lastProgressMs = performance.now();
  const latencies = new GrowableFloats();
  // WASMQ_BENCH_LATDUMP=prefix: each measured delivery's sequence number, send and receive time (absolute µs) to prefix.<ms>.bin, for offline analysis
  const latDump = process.env.WASMQ_BENCH_LATDUMP ? new GrowableFloats() : null;
  const originUs = performance.timeOrigin * 1000;
  const countMode = spec.count !== null;
  let onMeasuredDone: (() => void) | null = null;
  let onDrained: (() => void) | null = null;

  const outstanding = () => sent * subs - received;

  let failed: Error | null = null;
  let rejectRun: (err: Error) => void = () => {};
  const failure = new Promise<never>((_, reject) => (rejectRun = reject));
  failure.catch(() => {});
  function fail(err: Error): void {
    if (failed) return;
    failed = err;
    rejectRun(err);
  }

  // -- sending --------------------------------------------------------------
  // Messages go out in batches: the publishers that may send are picked round
  // robin, then each publisher's share is stamped into one buffer built from
  // copies of the pre-encoded packet, and written once.

  const planned = new Int32Array(publishers.length);
  let rr = 0;

  /** How many more messages may be sent now (count mode stops at `count` measured messages). */
  function allowance(want: number): number {
    if (!sending) return 0;
    if (countMode && measuring) return Math.max(0, Math.min(want, spec.count! - measuredSent));
    return want;
  }

  /** Assign up to n messages to publishers, round robin, within their QoS 1 windows. Returns how many. */
  function plan(n: number): number {
    let assigned = 0;
    let blocked = 0;
    while (assigned < n && blocked < publishers.length) {
      const pub = publishers[rr]!;
      rr = rr + 1 === publishers.length ? 0 : rr + 1;
      if (spec.qos === 1 && pub.inflight >= pub.window) {
        blocked++;
        continue;
      }
      blocked = 0;
      planned[pub.index]!++;
      if (spec.qos === 1) pub.inflight++;
      assigned++;
    }
    return assigned;
  }

  /** Build and queue the planned batches, stamped with one send time. */
  function emit(timeUs: number): void {
    const inWindow = measuring && timeUs >= t0Us && timeUs < t1Us;
    for (const pub of publishers) {
      const n = planned[pub.index]!;
      if (n === 0) continue;
      planned[pub.index] = 0;
      const rest = pub.templates.rest;
      const len = rest.bytes.length;
      // the first message may be longer (an MQTT 5 topic alias is set with its topic)
      const first = pub.sentFirst ? rest : pub.templates.first;
      pub.sentFirst = true;
      const batch = Buffer.allocUnsafe(first.bytes.length + (n - 1) * len);
      for (let i = 0; i < n; i++) {
        const t = i === 0 ? first : rest;
        const base = i === 0 ? 0 : first.bytes.length + (i - 1) * len;
        t.bytes.copy(batch, base);
        const seq = pub.nextSeq++;
        if (seq >= MAX_SEQ) return fail(new Error(`publisher ${pub.index} exceeded ${MAX_SEQ} messages`));
        stamp(batch, base + t.payloadOffset, timeUs, pub.index, seq);
        if (spec.qos === 1) {
          let id = pub.nextMessageId;
          // Skip identifiers still in flight (only possible with a window near 65535).
          while (pub.seqById[id] !== -1) id = id === 65535 ? 1 : id + 1;
          pub.nextMessageId = id === 65535 ? 1 : id + 1;
          pub.seqById[id] = seq;
          batch[base + t.messageIdOffset] = id >> 8;
          batch[base + t.messageIdOffset + 1] = id & 0xff;
        }
      }
      queueTo(pub.client, batch);
      sent += n;
      if (inWindow) {
        measuredSent += n;
        windowSent += n;
      }
    }
  }

  /** Clients with queued bytes (with 100 subscribers, visiting only these matters). */
  const dirty: RawClient[] = [];
  function queueTo(client: RawClient, buf: Buffer): void {
    if (client.queue(buf)) dirty.push(client);
  }
  function flushAll(): void {
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
    dirty.length = 0;
  }

  // -- closed loop: refill to `window` once half of it has been delivered -------
  // (batches of half a window keep the generator's syscalls few per message)
  function pump(): void {
    if (spec.rate !== null) return;
    const free = spec.window - outstanding();
    if (free < spec.window / 2) return;
    const n = allowance(Math.floor(free / subs));
    if (n > 0 && plan(n) > 0) emit(nowUs());
  }

  /** Once per event-loop turn, after every socket's data has been parsed: refill, then write. */
  let turnScheduled = false;
  function turn(): void {
    turnScheduled = false;
    pump();
    flushAll();
    checkDrained();
  }
  function scheduleTurn(): void {
    if (turnScheduled) return;
    turnScheduled = true;
    setImmediate(turn);
  }

  // -- fixed rate: every millisecond, send what the schedule says is due ---------
  let rateStartMs = 0;
  let rateSent = 0;
  let behindSchedule = false;
  let rateTimer: NodeJS.Timeout | null = null;
  function rateTick(): void {
    if (!sending) return;
    const nowMs = performance.now();
    const due = Math.floor(((nowMs - rateStartMs) * spec.rate!) / 1000) - rateSent;
    // More than a second of traffic outstanding: the broker is not keeping up; stop piling on.
    const cap = Math.max(0, Math.max(spec.window, spec.rate! * subs) - outstanding());
    const n = plan(allowance(Math.min(due, Math.floor(cap / subs))));
    if (n > 0) emit(nowMs * 1000);
    rateSent += n;
    if (measuring && due - n > spec.rate! / 20) behindSchedule = true; // > 50 ms behind
    flushAll();
    rateTimer = setTimeout(rateTick, 1);
  }

  // -- receive paths ----------------------------------------------------------
  // Frames are read in place (bench/frame-scanner.ts): a delivery's topic
  // length, packet identifier and stamp at fixed offsets, no parse, no
  // allocation per message.
  const st: Stamp = { timeUs: 0, publisher: 0, seq: 0 };
  const PUBLISH = 3;
  const PUBACK = 4;
  const onDelivery = (client: RawClient): FrameHandler => (buf, header, body, end) => {
    if (header >> 4 !== PUBLISH) return fail(new Error(`a subscriber received an unexpected packet of type ${header >> 4}`));
    const qos = (header >> 1) & 3;
    const topicLength = (buf[body]! << 8) | buf[body + 1]!;
    let at = body + 2 + topicLength;
    if (qos > 0) {
      if (client.queueAck((buf[at]! << 8) | buf[at + 1]!)) dirty.push(client);
      at += 2;
    }
    if (client.protocolVersion === 5) {
      // an empty topic is only allowed with a Topic Alias property ([MQTT-3.3.2-8])
      if (topicLength === 0) aliasedDeliveries++;
      at = skipLengthPrefixed(buf, at, end);
      if (at < 0) return fail(new Error("a delivery has a malformed property length"));
    }
    if (at > end || !readStampAt(buf, at, end, st)) return fail(new Error(`a delivered message carries no bench stamp`));
    const pub = publishers[st.publisher];
    if (!pub || st.seq >= pub.nextSeq) return fail(new Error(`a delivered message names publisher ${st.publisher} seq ${st.seq}, which was never sent`));
    const count = pub.delivered.get(st.seq);
    if (count >= subs) {
      duplicates++;
      return;
    }
    pub.delivered.set(st.seq, count + 1);
    received++;
    lastProgressMs = performance.now();
    const recvUs = lastProgressMs * 1000;
    if (measuring && recvUs >= t0Us) {
      if (recvUs < t1Us) windowReceived++;
      if (st.timeUs >= t0Us && st.timeUs < t1Us) {
        measuredReceived++;
        latencies.push((recvUs - st.timeUs) / 1000);
        if (latDump) latDump.push(st.seq), latDump.push(originUs + st.timeUs), latDump.push(originUs + recvUs);
        if (countMode && measuredSent >= spec.count! && measuredReceived >= spec.count! * subs) onMeasuredDone?.();
      }
    }
  };
  for (const c of subscribers) {
    c.onFrames(onDelivery(c));
    c.onChunk = scheduleTurn;
  }
  for (const pub of publishers) {
    pub.client.onFrames((buf, header, body) => {
      if (header >> 4 !== PUBACK) return fail(new Error(`a publisher received an unexpected packet of type ${header >> 4}`));
      const id = (buf[body]! << 8) | buf[body + 1]!;
      const seq = pub.seqById[id]!;
      if (seq < 0) return;
      pub.seqById[id] = -1;
      pub.acked.set(seq, 1);
      pub.inflight--;
      lastProgressMs = performance.now();
    });
    pub.client.onChunk = scheduleTurn;
  }
  for (const c of [...subscribers, ...publishers.map((p) => p.client)]) {
    c.socket.on("close", () => {
      if (sending || onDrained) fail(new Error(`the broker closed the connection of a bench client`));
    });
  }

  function allAcked(): boolean {
    return publishers.every((p) => p.inflight === 0);
  }
  function checkDrained(): void {
    if (onDrained && outstanding() <= 0 && allAcked()) onDrained();
  }

  // WASMQ_BENCH_DEBUG=1: deliveries per 250 ms on stderr, to see warm-up and stalls.
  let lastReceived = 0;
  const tracer = process.env.WASMQ_BENCH_DEBUG
    ? setInterval(() => {
        process.stderr.write(`${spec.scenarioId} t=${(performance.now() / 1000).toFixed(2)}s ${((received - lastReceived) * 4).toFixed(0)} deliveries/s${measuring ? " (measuring)" : ""}\n`);
        lastReceived = received;
      }, 250)
    : null;

  // Stall detection: no delivery or PUBACK for a while with messages outstanding.
  const stallLimitMs = 5000;
  const watchdog = setInterval(() => {
    if (!sending) return;
    if (outstanding() > 0 && performance.now() - lastProgressMs > stallLimitMs) {
      fail(new Error(`no delivery or PUBACK for ${stallLimitMs / 1000} s with ${outstanding()} deliveries outstanding (sent ${sent}, received ${received})`));
    }
  }, 500);

  const genTail = new TailMonitor();
  const start = () => {
    if (spec.rate !== null) {
      rateStartMs = performance.now();
      rateTick();
    } else turn();
  };

  try {
    // -- warm-up
    start();
    await Promise.race([new Promise((r) => setTimeout(r, spec.warmupSec * 1000)), failure]);

    // -- measure
    send({ type: "measure-start" });
    await Promise.race([go, failure]);
    genTail.read(); // the window starts here
    const allClients = [...subscribers, ...publishers.map((p) => p.client)];
    const readsBefore = allClients.reduce((n, c) => n + c.reads, 0);
    const cpu0 = process.cpuUsage();
    t0Us = nowUs();
    if (!countMode) t1Us = t0Us + spec.durationSec * 1e6;
    measuring = true;
    turn(); // a closed loop may be idle waiting on nothing new
    if (countMode) {
      const done = new Promise<void>((resolve) => (onMeasuredDone = resolve));
      // Generous bound, not a speed expectation: a broker that stops delivering fails the run.
      await Promise.race([done, failure]);
      t1Us = nowUs();
    } else {
      await Promise.race([new Promise((r) => setTimeout(r, spec.durationSec * 1000)), failure]);
    }
    sending = false;
    if (rateTimer) clearTimeout(rateTimer);
    const cpu1 = process.cpuUsage(cpu0);
    const genReads = allClients.reduce((n, c) => n + c.reads, 0) - readsBefore;
    const genTailFigures = genTail.read();
    if (process.env.WASMQ_BENCH_DEBUG) process.stderr.write(`gen cpu user ${cpu1.user / 1e3} ms sys ${cpu1.system / 1e3} ms\n`);
    send({ type: "measure-end" });
    const windowSec = (t1Us - t0Us) / 1e6;

    // -- drain: wait for every outstanding delivery and PUBACK, up to a bound
    const drainLimitMs = spec.qos === 1 ? 10_000 : 2000;
    await Promise.race([
      new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (performance.now() - lastProgressMs > drainLimitMs) finish();
        }, 100);
        const finish = () => {
          clearInterval(poll);
          onDrained = null;
          resolve();
        };
        onDrained = finish;
        checkDrained();
      }),
      failure,
    ]);
    onDrained = null;
    clearInterval(watchdog);

    // -- account
    let lostQos1 = 0;
    let lostQos0 = 0;
    for (const pub of publishers) {
      for (let seq = 0; seq < pub.nextSeq; seq++) {
        const missing = subs - pub.delivered.get(seq);
        if (missing <= 0) continue;
        if (spec.qos === 1) {
          if (pub.acked.get(seq)) lostQos1 += missing;
        } else lostQos0 += missing;
      }
    }
    const unacked = publishers.reduce((n, p) => n + p.inflight, 0);
    if (unacked > 0) throw new Error(`${unacked} QoS 1 PUBLISH(es) were never acknowledged by the broker`);

    const sorted = latencies.sorted();
    if (latDump) writeFileSync(`${process.env.WASMQ_BENCH_LATDUMP}.${Date.now()}.bin`, latDump.values());
    const deliveries = countMode ? measuredReceived : windowReceived;
    const genCpuSec = (cpu1.user + cpu1.system) / 1e6;
    await Promise.all([...subscribers, ...publishers.map((p) => p.client)].map((c) => c.disconnect()));
    return {
      msgsPerSec: deliveries / windowSec,
      publishedPerSec: (countMode ? measuredSent : windowSent) / windowSec,
      deliveries,
      windowSec,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      p999Ms: percentile(sorted, 0.999),
      maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
      latencySamples: sorted.length,
      ...(spec.rate !== null ? { latencyHistogram: histogramOf(sorted) } : {}),
      lostQos1,
      lostQos0,
      duplicates,
      genCpuSec,
      genCpuShare: genCpuSec / windowSec,
      behindSchedule,
      genTail: genTailFigures,
      genReads,
      genUserSec: cpu1.user / 1e6,
      publisherWindow: Math.min(...publishers.map((p) => p.window)),
      aliasedDeliveries,
    };
  } finally {
    genTail.dispose();
    sending = false;
    clearInterval(watchdog);
    if (tracer) clearInterval(tracer);
    if (rateTimer) clearTimeout(rateTimer);
    for (const c of [...subscribers, ...publishers.map((p) => p.client)]) c.socket.destroy();
  }
}

if (!process.send) {
  console.error("bench/loadgen.js is started by bench/run.js (it talks over the fork IPC channel)");
  process.exit(2);
}

let releaseGo: () => void = () => {};
const go = new Promise<void>((resolve) => (releaseGo = resolve));
process.on("message", (msg: ToLoad) => {
  if (msg.type === "go") releaseGo();
  else if (msg.type === "run") {
    run(msg.spec, go).then(
      (result) => {
        send({ type: "result", result });
        process.disconnect();
      },
      (err: unknown) => {
        send({ type: "error", message: err instanceof Error ? err.message : String(err) });
        process.disconnect();
      },
    );
  }
});
process.on("disconnect", () => setTimeout(() => process.exit(0), 100).unref());
