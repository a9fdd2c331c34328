/**
 * The broker's logger: JSON lines on stdout (what log shippers read), or
 * pino-pretty's human-readable lines when stdout is a terminal; and, beside
 * stdout, the in-memory ring the dashboard's live tail reads (a second pino
 * destination, so the tail shows the very records the log shows).
 *
 * `WASMQ_LOG_FORMAT=json` or `=pretty` overrides the terminal check.
 */
import { pino, type DestinationStream, type Logger } from "pino";
import { LogRing } from "./dashboard/log-ring.js";

const rings = new WeakMap<Logger, LogRing>();

function stdoutDestination(): DestinationStream {
  const format = process.env.WASMQ_LOG_FORMAT;
  const pretty = format === "pretty" || (format !== "json" && process.stdout.isTTY === true);
  // Synchronous, as pino's default: nothing is lost when the process exits right after a line.
  if (!pretty) return pino.destination(1);
  // A worker thread formats the lines; colour only on a terminal.
  return pino.transport({ target: "pino-pretty", options: { destination: 1, colorize: process.stdout.isTTY === true, translateTime: "SYS:standard", ignore: "pid,hostname" } }) as DestinationStream;
}

/** `destination` replaces stdout (tests, embedders); the ring is fed either way. */
export function createBrokerLogger(level: string, opts: { destination?: DestinationStream } = {}): Logger {
  const ring = new LogRing();
  const logger = pino(
    { level, base: { pid: process.pid } },
    // Each stream takes every record the logger's level lets through.
    pino.multistream([
      { level: "trace", stream: opts.destination ?? stdoutDestination() },
      { level: "trace", stream: ring },
    ]),
  );
  rings.set(logger, ring);
  return logger;
}

/** The log tail of a logger made by createBrokerLogger (null for an embedder's own logger). */
export function logRingOf(logger: Logger): LogRing | null {
  return rings.get(logger) ?? null;
}
