/**
 * A real browser for the dashboard tests: Debian's chromium, headless, driven
 * by puppeteer-core (which never downloads a browser). Tests that need it skip
 * with a message when chromium is not installed (.ci/run installs it).
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { parseRawConfig, resolveConfig, type RawConfig } from "../broker/config.js";
import { createBrokerLogger } from "../broker/ops/logging.js";
import { startBroker, type RunningBroker } from "../broker/server.js";

export const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p)) ?? null;

export async function launchBrowser(): Promise<Browser> {
  if (!CHROMIUM) throw new Error("chromium is not installed (apt-get install chromium)");
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
  });
}

/** A page that records dialogs (alert/confirm/prompt), page errors and CSP violations. */
export async function openPage(browser: Browser): Promise<{ page: Page; dialogs: string[]; errors: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on("dialog", (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => {
    // Answers like the 401 before signing in are the browser's network log, not the page's errors.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) errors.push(msg.text());
  });
  return { page, dialogs, errors };
}

/** Wait until the page's text for a selector satisfies a predicate (generous timeout; no timing asserted). */
export async function waitForText(page: Page, selector: string, predicate: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    last = await page.$eval(selector, (el) => el.textContent ?? "").catch(() => "");
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting on ${selector}; last text: ${JSON.stringify(last.slice(0, 500))}`);
}

/** A log destination that discards (the tests read the broker's log through the dashboard). */
export function nullStream(): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

/** Open the dashboard and sign in through its login form. */
export async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.waitForSelector("#login");
  await page.type("#token", token);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("nav");
}

/** Go to one of the dashboard's views (#id) without reloading the page. */
export async function show(page: Page, id: string): Promise<void> {
  await page.evaluate((h) => (location.hash = h), `#${id}`);
  await page.waitForFunction((h) => document.querySelector(`nav a[data-page="${h}"]`)?.classList.contains("active") === true, {}, id);
}

/** Click the first table row under `container` whose text contains `text` (found afresh: lists re-render). */
export async function clickRow(page: Page, container: string, text: string, timeoutMs = 20_000): Promise<void> {
  await page.waitForFunction(
    (sel, t) => {
      const row = [...document.querySelectorAll(`${sel} tbody tr`)].find((r) => (r.textContent ?? "").includes(t));
      if (!row) return false;
      (row as HTMLElement).click();
      return true;
    },
    { timeout: timeoutMs },
    container,
    text,
  );
}

/** A broker from a raw config (as a file would hold it) whose logs go nowhere but the dashboard's own tail. */
export function startQuietBroker(raw: RawConfig, label: string, level = "info"): Promise<RunningBroker> {
  const config = resolveConfig(parseRawConfig(raw, label), null);
  return startBroker(config, { logger: createBrokerLogger(level, { destination: nullStream() }) });
}

/** A dashboard under test: its broker, a browser, and where to reach them. */
export interface DashboardRig {
  broker: RunningBroker;
  browser: Browser;
  /** The dashboard's URL (the admin listener). */
  base: string;
  /** The broker's MQTT TCP listener. */
  mqttUrl: string;
  /** Close the browser and the broker, then remove the rig's folder. */
  close(): Promise<void>;
}

/**
 * A quiet broker serving the dashboard (admin listener with `token`, MQTT over
 * TCP and WebSocket, all on free ports; data in DIR/data; no $SYS) with `raw`
 * on top, and a headless chromium. close() removes `dir`.
 */
export async function startDashboard(dir: string, token: string, raw: RawConfig, label: string, level?: string): Promise<DashboardRig> {
  const broker = await startQuietBroker(
    { port: 0, ws: { port: 0 }, data: join(dir, "data"), sys: false, metrics: { port: 0, token }, ...raw },
    label,
    level,
  );
  let browser: Browser;
  try {
    browser = await launchBrowser();
  } catch (err) {
    await broker.close();
    throw err;
  }
  return {
    broker,
    browser,
    base: broker.admin!.url,
    mqttUrl: `mqtt://127.0.0.1:${broker.port("tcp")}`,
    async close() {
      await browser.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
