/**
 * GET /dashboard/api/live — the page's live feed as `text/event-stream`. The
 * page reads it with fetch() (an EventSource cannot send the Authorization
 * header, and the token never goes in a URL). Events:
 *
 *   history   {samples: Sample[]}           once, the last 15 minutes
 *   sample    Sample                        every second
 *   client    {kind, id}                    a client connected or went away
 *   log       LogRecord                     with ?logs=LEVEL: each record at LEVEL or above
 *                                           (the ring's recent ones first)
 *
 * A comment line every 15 s keeps proxies from closing an idle stream.
 */
import { HttpError, type AdminRequest } from "../admin.js";
import type { Dashboard } from "./index.js";
import { LEVELS } from "./log-ring.js";
import { SECURITY_HEADERS } from "./assets.js";

const KEEPALIVE_MS = 15_000;
const RECENT_LOGS = 200;

export function serveLive(r: AdminRequest, dashboard: Dashboard): void {
  const logLevel = r.url.searchParams.get("logs");
  if (logLevel !== null && !(logLevel in LEVELS)) throw new HttpError(400, `logs: expected one of ${Object.keys(LEVELS).join(", ")}`);
  const { res } = r;
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
  });
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  send("history", { samples: dashboard.sampler.history() });
  const stops = [dashboard.sampler.subscribe((s) => send("sample", s)), dashboard.onClientChange((e) => send("client", e))];
  const ring = dashboard.sources.logs;
  if (logLevel !== null) {
    const min = LEVELS[logLevel]!;
    if (ring) {
      for (const rec of ring.recent(min, RECENT_LOGS)) send("log", rec);
      stops.push(ring.subscribe((rec) => rec.level >= min && send("log", rec)));
    } else {
      send("log", { level: 40, time: Date.now(), msg: "this broker was started with an embedder's logger: there is no log tail to show" });
    }
  }
  const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
  keepalive.unref();
  const end = () => {
    clearInterval(keepalive);
    for (const stop of stops) stop();
  };
  res.on("close", end);
  r.req.on("close", end);
}
