#!/usr/bin/env node
/**
 * The README's dashboard screenshot, taken by the test suite's browser:
 *
 *   npm run screenshot [-- --out docs/dashboard.png --seconds 40]
 *
 * Starts the telemetry example broker (examples/telemetry.json: transform,
 * filter, router, aggregate plugins) on free ports with an in-memory store,
 * drives it with the device simulator, opens the dashboard in chromium and
 * saves the Overview page. Also prints how long the page took to load
 * (navigation timing), which is how the README's load figure was measured.
 * Run it by hand when the dashboard's look changes; the test run does not.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../../broker/config.js";
import { createBrokerLogger } from "../../broker/ops/logging.js";
import { startBroker } from "../../broker/server.js";
import { parseOptions, simulate } from "../../examples/simulator.js";
import { launchBrowser, nullStream } from "../dashboard-support.js";
import { connect, end, ROOT, tempDir } from "../helpers.js";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: "string", default: join(ROOT, "docs/dashboard.png") }, seconds: { type: "string", default: "40" } } });
  const seconds = Number(values.seconds);
  const data = tempDir("wasmq-shot-");
  const config = loadConfig(join(ROOT, "examples/telemetry.json"), { port: 0, wsPort: 0, metricsPort: 0, data, persistence: "memory" });
  const broker = await startBroker(config, { logger: createBrokerLogger("info", { destination: nullStream() }) });
  const browser = await launchBrowser();
  try {
    const url = `mqtt://127.0.0.1:${broker.port("tcp")}`;
    const opts = parseOptions(["--url", url, "--devices", "25", "--rate", "4", "--duration", String(seconds), "--seed", "7", "--spike", "0.05"]);
    if (opts === "help") throw new Error("unexpected");
    const fleet = simulate(opts, () => {}, new Promise(() => {}));
    // Two dashboards' worth of consumers, so messages also flow out.
    const consumers = await Promise.all(["ops-console", "alert-pager"].map((id) => connect(url, { clientId: id })));
    await consumers[0]!.subscribeAsync("sensors/#", { qos: 1 });
    await consumers[1]!.subscribeAsync(["alerts/#", "sensors/+/temp"], { qos: 0 });
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900, deviceScaleFactor: 1 });
    const started = Date.now();
    await page.goto(`${broker.admin!.url}/`, { waitUntil: "load" });
    await page.waitForSelector(".chart canvas");
    const firstChart = Date.now() - started;
    const timing = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      return { domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, transferBytes: performance.getEntriesByType("resource").reduce((n, r) => n + (r as PerformanceResourceTiming).transferSize, nav.transferSize) };
    });
    process.stdout.write(
      `page load: DOMContentLoaded ${timing.domContentLoaded.toFixed(0)} ms, load ${timing.load.toFixed(0)} ms, charts drawn after ${firstChart} ms, ${(timing.transferBytes / 1024).toFixed(0)} KiB transferred\n`,
    );
    await new Promise((r) => setTimeout(r, seconds * 1000 - 2000));
    await page.screenshot({ path: values.out as `${string}.png`, type: "png", fullPage: false });
    process.stdout.write(`saved ${values.out}\n`);
    await fleet;
    await end(...consumers);
  } finally {
    await browser.close();
    await broker.close();
    rmSync(data, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`screenshot: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
