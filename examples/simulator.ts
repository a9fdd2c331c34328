#!/usr/bin/env node
/**
 * A fleet of fake devices for trying wasmq's plugins under realistic traffic:
 *
 *   npm run simulate -- --url mqtt://127.0.0.1:1883 --devices 50 --rate 2 --duration 30
 *
 * Device n connects as client id `dev-<n>` (optionally with a username/password
 * from a template), leaves a retained `online` status with a last will of
 * `offline`, and publishes JSON readings ({"value", "unit", "ts", "seq"}) in turn
 * on <prefix>/<id>/temp, /humidity and /battery. Ends after --duration seconds or
 * on Ctrl-C with a summary; exits 1 when anything went wrong.
 */
import mqtt, { type MqttClient } from "mqtt";
import { parseArgs } from "node:util";
import { seededRandom, Sensor } from "./telemetry-model.js";

export const USAGE = `usage: npm run simulate -- [options]

  --url URL             broker (mqtt://, mqtts://, ws://, wss://)     default mqtt://127.0.0.1:1883
  --devices N           number of devices                              default 10
  --rate R              readings per second per device (may be < 1)    default 1
  --duration S          seconds to run; 0 = until Ctrl-C               default 30
  --qos 0|1             QoS of the readings                            default 1
  --username TEMPLATE   e.g. "device-{n}" ({n} = device number, {id} = client id)
  --password TEMPLATE   e.g. "secret-{n}"
  --id-prefix P         client ids are P1, P2, ...                     default dev-
  --topic-prefix T      topics are T/<id>/temp etc. ({n}, {id} allowed) default sensors
  --spike P             probability of an out-of-range temperature     default 0.02
  --seed N              seed for the readings (same seed, same run)    default random
  --json                print the summary as JSON`;

export interface SimulatorOptions {
  url: string;
  devices: number;
  rate: number;
  duration: number;
  qos: 0 | 1;
  username: string | undefined;
  password: string | undefined;
  idPrefix: string;
  topicPrefix: string;
  spike: number;
  seed: number;
  json: boolean;
}

export class UsageError extends Error {}

function numberOption(name: string, raw: string | undefined, fallback: number, opts: { min: number; max: number; integer?: boolean }): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  const kind = opts.integer ? "a whole number" : "a number";
  if (raw.trim() === "" || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || n < opts.min || n > opts.max) {
    throw new UsageError(`--${name}: expected ${kind} from ${opts.min} to ${opts.max}, got "${raw}"`);
  }
  return n;
}

export function parseOptions(argv: string[]): SimulatorOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: "string" },
        devices: { type: "string" },
        rate: { type: "string" },
        duration: { type: "string" },
        qos: { type: "string" },
        username: { type: "string" },
        password: { type: "string" },
        "id-prefix": { type: "string" },
        "topic-prefix": { type: "string" },
        spike: { type: "string" },
        seed: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return "help";
  const url = v.url ?? "mqtt://127.0.0.1:1883";
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new UsageError(`--url: "${url}" is not a URL (e.g. mqtt://127.0.0.1:1883)`);
  }
  if (!["mqtt:", "mqtts:", "tcp:", "ws:", "wss:"].includes(protocol)) {
    throw new UsageError(`--url: the scheme must be mqtt, mqtts, ws or wss, not ${protocol.slice(0, -1)}`);
  }
  const idPrefix = v["id-prefix"] ?? "dev-";
  if (/[/+#]/.test(idPrefix)) throw new UsageError(`--id-prefix: "${idPrefix}" must not contain '/', '+' or '#' (it becomes a topic level)`);
  const topicPrefix = v["topic-prefix"] ?? "sensors";
  if (topicPrefix === "" || /[+#]/.test(topicPrefix) || topicPrefix.endsWith("/")) {
    throw new UsageError(`--topic-prefix: "${topicPrefix}" must be a topic name without wildcards or a trailing '/'`);
  }
  if (v.password !== undefined && v.username === undefined) throw new UsageError("--password needs --username");
  return {
    url,
    devices: numberOption("devices", v.devices, 10, { min: 1, max: 100_000, integer: true }),
    rate: numberOption("rate", v.rate, 1, { min: 0.001, max: 1000 }),
    duration: numberOption("duration", v.duration, 30, { min: 0, max: 31_536_000 }),
    qos: numberOption("qos", v.qos, 1, { min: 0, max: 1, integer: true }) as 0 | 1,
    username: v.username,
    password: v.password,
    idPrefix,
    topicPrefix,
    spike: numberOption("spike", v.spike, 0.02, { min: 0, max: 1 }),
    seed: numberOption("seed", v.seed, Math.floor(Math.random() * 2 ** 31), { min: 0, max: 2 ** 32 - 1, integer: true }),
    json: v.json,
  };
}

export interface Summary {
  devices: number;
  /** Devices whose connection was accepted. */
  connected: number;
  /** Devices whose CONNECT was refused (CONNACK return code) or could not reach the broker. */
  failedToConnect: number;
  /** Devices whose connection dropped before the end (e.g. a plugin denied a publish). */
  lost: number;
  sent: number;
  /** QoS 1: acknowledged by the broker. QoS 0: written to the socket. */
  acked: number;
  errors: number;
  /** Sent but neither acknowledged nor failed when the run ended. */
  unacked: number;
  spikes: number;
  seconds: number;
}

function fill(template: string, n: number, id: string): string {
  return template.replaceAll("{n}", String(n)).replaceAll("{id}", id);
}

interface Counters {
  sent: number;
  acked: number;
  errors: number;
  spikes: number;
}

/** One fake device: its connection, its sensor, its publishing timer. */
class Device {
  readonly id: string;
  private readonly client: MqttClient;
  private readonly base: string;
  private readonly sensor: Sensor;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private stopping = false;
  everConnected = false;
  failed = false;
  lost = false;
  /** Resolves once this device has connected or given up. */
  readonly settled: Promise<void>;
  private settle!: () => void;

  constructor(
    n: number,
    private readonly opts: SimulatorOptions,
    private readonly counters: Counters,
    private readonly report: (message: string) => void,
  ) {
    this.id = `${opts.idPrefix}${n}`;
    this.base = `${fill(opts.topicPrefix, n, this.id)}/${this.id}`;
    this.sensor = new Sensor(seededRandom(opts.seed + n), opts.spike);
    this.settled = new Promise((resolve) => (this.settle = resolve));
    this.client = mqtt.connect(opts.url, {
      clientId: this.id,
      ...(opts.username !== undefined ? { username: fill(opts.username, n, this.id) } : {}),
      ...(opts.password !== undefined ? { password: fill(opts.password, n, this.id) } : {}),
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      will: { topic: `${this.base}/status`, payload: Buffer.from(this.status("offline")), qos: 1, retain: true },
    });
    this.client.on("connect", () => this.onConnect());
    this.client.on("error", (err: Error & { code?: number | string }) => {
      if (!this.everConnected) {
        this.failed = true;
        this.settle();
        this.report(`${this.id}: cannot connect: ${err.message}`);
      } else {
        counters.errors++;
        this.report(`${this.id}: ${err.message}`);
      }
    });
    this.client.on("close", () => {
      this.clearTimer();
      if (!this.everConnected && !this.failed && !this.stopping) {
        this.failed = true;
        this.settle();
        this.report(`${this.id}: connection closed before CONNACK`);
      } else if (this.everConnected && !this.stopping && !this.lost) {
        this.lost = true;
        this.report(`${this.id}: connection lost (the broker closed it)`);
      }
    });
  }

  private status(state: "online" | "offline"): string {
    return JSON.stringify({ status: state, ts: Date.now() });
  }

  private onConnect(): void {
    this.everConnected = true;
    this.settle();
    this.publish(`${this.base}/status`, this.status("online"), 1, true);
    const interval = 1000 / this.opts.rate;
    // Stagger the devices over one interval so the fleet does not publish in lockstep.
    this.timer = setTimeout(() => {
      this.tick();
      this.timer = setInterval(() => this.tick(), interval);
    }, Math.random() * interval);
  }

  private tick(): void {
    const reading = this.sensor.read();
    if (reading.spike) this.counters.spikes++;
    const payload = JSON.stringify({ value: reading.value, unit: reading.unit, ts: Date.now(), seq: ++this.seq });
    this.publish(`${this.base}/${reading.metric}`, payload, this.opts.qos, false);
  }

  private publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    this.counters.sent++;
    this.client.publish(topic, payload, { qos, retain }, (err) => {
      if (err) {
        this.counters.errors++;
        this.report(`${this.id}: publish to ${topic} failed: ${err.message}`);
      } else {
        this.counters.acked++;
      }
    });
  }

  private clearTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stop publishing, say goodbye (status offline, then a clean DISCONNECT), wait for outstanding acks. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.clearTimer();
    if (!this.client.connected) {
      this.client.end(true);
      return;
    }
    this.publish(`${this.base}/status`, this.status("offline"), 1, true);
    // end(false) waits for every outstanding ack; a broker that stopped answering must not hang the summary.
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 5_000)));
    const ended = this.client.endAsync(false).then(
      () => false,
      () => false,
    );
    if (await Promise.race([ended, gaveUp])) this.client.stream?.destroy();
    clearTimeout(timer);
  }
}

/**
 * Run the fleet until `duration` elapses (0: until `stopSignal` resolves) and
 * return what happened. Problems are reported as they occur through `report`.
 */
export async function simulate(opts: SimulatorOptions, report: (message: string) => void, stopSignal: Promise<void>): Promise<Summary> {
  const counters: Counters = { sent: 0, acked: 0, errors: 0, spikes: 0 };
  const started = Date.now();
  const devices = Array.from({ length: opts.devices }, (_, i) => new Device(i + 1, opts, counters, report));
  let timer: NodeJS.Timeout | undefined;
  const elapsed = opts.duration > 0 ? new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.duration * 1000))) : new Promise<void>(() => {});
  // Nothing to simulate once every device has been refused: end now rather than after --duration.
  const allFailed = Promise.all(devices.map((d) => d.settled)).then(() => {
    if (!devices.every((d) => d.failed)) return new Promise<void>(() => {});
  });
  await Promise.race([elapsed, stopSignal, allFailed]);
  clearTimeout(timer);
  await Promise.all(devices.map((d) => d.stop()));
  return {
    devices: opts.devices,
    connected: devices.filter((d) => d.everConnected).length,
    failedToConnect: devices.filter((d) => d.failed).length,
    lost: devices.filter((d) => d.lost).length,
    ...counters,
    unacked: counters.sent - counters.acked - counters.errors,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

export function formatSummary(s: Summary): string {
  return [
    `devices ${s.devices}: connected ${s.connected}, failed to connect ${s.failedToConnect}, lost ${s.lost}`,
    `messages: sent ${s.sent}, acked ${s.acked}, errors ${s.errors}${s.unacked ? `, unacknowledged ${s.unacked}` : ""} (${s.spikes} out-of-range temperature spikes) in ${s.seconds} s`,
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  let opts: SimulatorOptions | "help";
  try {
    opts = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`simulate: ${err.message}\nRun "npm run simulate -- --help" for the options.\n`);
    return 2;
  }
  if (opts === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Ten problem lines tell the story; a thousand refused devices would drown it.
  let reported = 0;
  const report = (message: string) => {
    if (++reported <= 10) process.stderr.write(`simulate: ${message}\n`);
    else if (reported === 11) process.stderr.write("simulate: (further problems are only counted)\n");
  };
  const stopSignal = new Promise<void>((resolve) => {
    process.once("SIGINT", () => {
      process.once("SIGINT", () => process.exit(130));
      resolve();
    });
    process.once("SIGTERM", () => resolve());
  });
  if (!opts.json) {
    const how = opts.duration > 0 ? `for ${opts.duration} s` : "until Ctrl-C";
    process.stdout.write(`simulating ${opts.devices} devices at ${opts.rate} readings/s each on ${opts.url} ${how} (seed ${opts.seed})\n`);
  }
  const summary = await simulate(opts, report, stopSignal);
  process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
  const healthy = summary.failedToConnect === 0 && summary.lost === 0 && summary.errors === 0 && summary.unacked === 0;
  return healthy ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`simulate: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
