/**
 * The client processes of bench/slow-ack.ts (each its own process, so the
 * broker's CPU is not theirs): `pub` publishes QoS 1 messages with a window
 * and reports its PUBACK latencies; `sub` is an ordinary mqtt.js persistent
 * subscriber; `sub-loaded` the same on an event loop kept busy (a subscriber
 * whose application does work between reads).
 *
 *   node dist/bench/slow-ack-clients.js pub URL TOPIC COUNT WINDOW
 *   node dist/bench/slow-ack-clients.js sub|sub-loaded URL TOPIC COUNT CLIENT_ID
 *
 * A subscriber prints "ready" once subscribed and exits after COUNT messages;
 * the publisher prints one JSON line: {count, elapsedMs, pubackMs: [...]}.
 */
import mqtt from "mqtt";

/** sub-loaded: busy this long every LOADED_PERIOD_MS (an event loop ~60% busy). */
const LOADED_BUSY_MS = 3;
const LOADED_PERIOD_MS = 5;

async function publisher(url: string, topic: string, count: number, window: number): Promise<void> {
  const pub = await mqtt.connectAsync(url, { clientId: `slow-ack-pub-${process.pid}`, reconnectPeriod: 0 });
  const pubackMs = new Float64Array(count);
  let sent = 0;
  let done = 0;
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const send = () => {
      if (sent >= count) return;
      const i = sent++;
      const t0 = performance.now();
      pub.publish(topic, `{"s":${i}}`, { qos: 1 }, (err) => {
        if (err) return reject(err);
        pubackMs[i] = performance.now() - t0;
        if (++done === count) resolve();
        else send();
      });
    };
    for (let k = 0; k < window; k++) send();
  });
  const elapsedMs = performance.now() - start;
  await pub.endAsync();
  process.stdout.write(JSON.stringify({ count, elapsedMs, pubackMs: Array.from(pubackMs) }) + "\n");
}

async function subscriber(url: string, topic: string, count: number, clientId: string, loaded: boolean): Promise<void> {
  if (loaded) {
    setInterval(() => {
      const until = performance.now() + LOADED_BUSY_MS;
      while (performance.now() < until);
    }, LOADED_PERIOD_MS);
  }
  const sub = await mqtt.connectAsync(url, { clientId, clean: false, reconnectPeriod: 0 });
  let got = 0;
  sub.on("message", () => {
    if (++got === count) setTimeout(() => process.exit(0), 200); // let the last PUBACK go out
  });
  await sub.subscribeAsync(topic, { qos: 1 });
  process.stdout.write("ready\n");
}

const [kind, url, topic, count, last] = process.argv.slice(2);
if (kind === "pub") await publisher(url!, topic!, Number(count), Number(last));
else if (kind === "sub" || kind === "sub-loaded") await subscriber(url!, topic!, Number(count), last!, kind === "sub-loaded");
else throw new Error(`unknown client kind ${String(kind)}`);
