// The dashboard's other views against a real broker in chromium: overview
// charts, retained messages (view, delete), plugin upload (sha256 before
// applying, refusals with their reason), the live log tail, the in-page MQTT
// client over the WebSocket listener, and the nodes/bridges entries that only
// appear when their APIs answer.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser } from "puppeteer-core";
import type { RunningBroker } from "../broker/server.js";
import { CHROMIUM, clickRow, launchBrowser, openPage, show, signIn, startDashboard, waitForText, startQuietBroker, type DashboardRig } from "./dashboard-support.js";
import { collect, connect, end, freePort, settle, subscribe, tempDir, wasm } from "./helpers.js";

const TOKEN = "views-token-0123456789";

describe("dashboard views", { skip: CHROMIUM ? false : "chromium is not installed", timeout: 240_000 }, () => {
  let rig: DashboardRig | undefined;
  let broker: RunningBroker;
  let browser: Browser;
  let dir: string;
  let pluginFile: string;
  let base: string;
  let mqttUrl: string;

  before(async () => {
    dir = tempDir();
    pluginFile = join(dir, "filter.wasm");
    copyFileSync(wasm("filter"), pluginFile);
    rig = await startDashboard(dir, TOKEN, {
      plugins: [{ name: "filter", wasm: pluginFile, watch: false, config: { action: "drop", onMissing: "pass", onInvalid: "drop", rules: [{ topic: "never/+/temp", field: "value", min: 0, max: 1 }] } }],
    }, "views test config");
    ({ broker, browser, base, mqttUrl } = rig);
  });
  after(() => rig?.close());

  test("overview: live figures and six charts; no nodes/bridges entries without their APIs", async () => {
    const { page, errors } = await openPage(browser);
    const c = await connect(mqttUrl, { clientId: "overview-probe" });
    try {
      await signIn(page, base, TOKEN);
      await page.waitForSelector("#cards");
      assert.equal(await page.$$eval(".chart canvas", (els) => els.length >= 6), true);
      // The clients card follows the broker's count once a sample arrives.
      await waitForText(page, "#cards", (t) => /1\s*clients/.test(t));
      const nav = await page.$eval("nav", (n) => n.textContent ?? "");
      assert.ok(!nav.includes("Nodes") && !nav.includes("Bridges"), "no /cluster or /bridges API: no entries");
      assert.deepEqual(errors, []);
    } finally {
      await end(c);
      await page.close();
    }
  });

  test("topics: a retained message is shown as JSON and hex, and deleted without being delivered", async () => {
    const { page } = await openPage(browser);
    const pub = await connect(mqttUrl, { clientId: "retained-pub" });
    try {
      await pub.publishAsync("dash/retained/1", JSON.stringify({ a: 1, b: "two" }), { qos: 1, retain: true });
      await signIn(page, base, TOKEN);
      await show(page, "topics");
      await page.$eval("#retained-filter", (el) => ((el as HTMLInputElement).value = "dash/#"));
      await page.click("#main form.toolbar button[type=submit]");
      await waitForText(page, "#retained-list", (t) => t.includes("dash/retained/1"));
      await clickRow(page, "#retained-list", "dash/retained/1");
      await waitForText(page, "#retained-view pre.payload", (t) => t.includes('"b": "two"'));
      await page.click("#retained-view button.mode-hex");
      await waitForText(page, "#retained-view pre.payload", (t) => t.startsWith("00000000  7b 22 61 22"));

      const watcher = await connect(mqttUrl, { clientId: "retained-watch" });
      const live = collect(watcher);
      await subscribe(watcher, "dash/#", 1);
      await live.waitFor(1);
      await page.click("#retained-view button.delete-retained");
      await page.click("#retained-view button.delete-retained");
      await waitForText(page, "#retained-list", (t) => !t.includes("dash/retained/1"));
      await settle(watcher);
      assert.equal(live.messages.length, 1, "deleting did not deliver anything to subscribers");
      const late = await connect(mqttUrl, { clientId: "retained-late" });
      const got = collect(late);
      await subscribe(late, "dash/#", 1);
      await settle(late);
      assert.equal(got.messages.length, 0, "the retained message is gone");
      await end(watcher, late);
    } finally {
      await end(pub);
      await page.close();
    }
  });

  test("plugins: an upload shows its sha256 before it is applied; a refused build shows the reason", async () => {
    const { page } = await openPage(browser);
    try {
      await signIn(page, base, TOKEN);
      await show(page, "plugins");
      const section = 'section.plugin[data-plugin="filter"]';
      await page.waitForSelector(section);
      await page.click(`${section} button.upload-toggle`);
      await page.waitForSelector(`${section} input.upload-file`);
      const junk = join(dir, "junk.wasm");
      writeFileSync(junk, "this is not wasm");
      await ((await page.$(`${section} input.upload-file`)) as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(junk);
      await waitForText(page, `${section} .upload-result`, (t) => t.startsWith("Refused:"));
      assert.equal(await page.$eval(`${section} button.apply`, (b) => (b as HTMLButtonElement).disabled), true);

      const build = wasm("auth");
      const running = broker.chain.slot("filter")!.sha256;
      await ((await page.$(`${section} input.upload-file`)) as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(build);
      // auth does not take filter's config (its manifest's schema, or its init, says so): refused, nothing changes.
      await waitForText(page, `${section} .upload-result`, (t) => t.startsWith("Refused:") && /config/.test(t));
      assert.equal(broker.chain.slot("filter")!.sha256, running);

      const rebuilt = wasm("filter");
      const good = createHash("sha256").update(readFileSync(rebuilt)).digest("hex");
      await ((await page.$(`${section} input.upload-file`)) as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(rebuilt);
      await waitForText(page, `${section} .upload-result`, (t) => t.includes(`sha256 ${good}`) && t.includes("not applied"));
      const reloadsBefore = broker.chain.slot("filter")!.stats.reloads;
      await page.click(`${section} button.apply`);
      await waitForText(page, "#toasts", (t) => t.includes("new build applied"));
      assert.equal(broker.chain.slot("filter")!.stats.reloads, reloadsBefore + 1);
      assert.equal(broker.chain.slot("filter")!.sha256, good);

      // Reload from disk: the saved upload is what the file now holds.
      const reloads = broker.chain.slot("filter")!.stats.reloads;
      await page.waitForSelector(`${section} button.reload`);
      await page.click(`${section} button.reload`);
      await waitForText(page, "#toasts", (t) => t.includes("filter: reloaded"));
      assert.equal(broker.chain.slot("filter")!.stats.reloads, reloads + 1);
    } finally {
      await page.close();
    }
  });

  test("logs: the live tail shows what the broker logs, filtered by level", async () => {
    const { page } = await openPage(browser);
    try {
      await signIn(page, base, TOKEN);
      await show(page, "logs");
      const c = await connect(mqttUrl, { clientId: "log-probe" });
      const res = await fetch(`${base}/clients/log-probe`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}`, "x-wasmq-request": "1" } });
      assert.equal(res.status, 200);
      await waitForText(page, "#log-lines", (t) => t.includes("admin: client log-probe disconnected"));
      await page.select("#log-level", "error");
      await page.waitForFunction(() => !(document.querySelector("#log-lines")?.textContent ?? "").includes("log-probe"));
      await end(c);
    } finally {
      await page.close();
    }
  });

  test("MQTT client page: connects over the WebSocket listener, subscribes, publishes, shows messages", async () => {
    const { page, errors } = await openPage(browser);
    const other = await connect(mqttUrl, { clientId: "ws-peer" });
    try {
      const got = collect(other);
      await subscribe(other, "dash/from-page", 1);
      await signIn(page, base, TOKEN);
      await show(page, "mqtt");
      await waitForText(page, "#mqtt-url", () => true);
      await page.waitForFunction(() => (document.querySelector("#mqtt-url") as HTMLInputElement).value.startsWith("ws://"));
      await page.$eval("#mqtt-client-id", (el) => ((el as HTMLInputElement).value = "page-client"));
      await page.click("#mqtt-connect");
      await waitForText(page, "#mqtt-state", (t) => t === "connected");
      assert.ok(Object.keys((broker.aedes as unknown as { clients: object }).clients).includes("page-client"));
      await page.$eval("#mqtt-sub-topic", (el) => ((el as HTMLInputElement).value = "dash/to-page"));
      await page.click("#mqtt-subscribe");
      await waitForText(page, "#mqtt-subs", (t) => t.includes("dash/to-page"));
      await other.publishAsync("dash/to-page", "hello page", { qos: 1 });
      await waitForText(page, "#mqtt-messages", (t) => t.includes("hello page"));
      await page.$eval("#mqtt-pub-topic", (el) => ((el as HTMLInputElement).value = "dash/from-page"));
      await page.$eval("#mqtt-pub-payload", (el) => ((el as HTMLTextAreaElement).value = "hello broker"));
      await page.click("#mqtt-publish");
      const [m] = await got.waitFor(1);
      assert.equal(m!.payload.toString(), "hello broker");
      assert.deepEqual(errors, []);
    } finally {
      await end(other);
      await page.close();
    }
  });
});

describe("dashboard: the Bridges page appears when bridges are configured", { skip: CHROMIUM ? false : "chromium is not installed", timeout: 120_000 }, () => {
  test("a configured bridge (its upstream down) is listed with its state", async () => {
    const dir = tempDir();
    const nobody = await freePort();
    const edge = await startQuietBroker(
      {
        port: 0,
        ws: false,
        data: join(dir, "data"),
        sys: false,
        metrics: { port: 0, token: TOKEN },
        bridges: [{ name: "cloud", url: `mqtt://127.0.0.1:${nobody}`, clientId: "edge-view", out: [{ topic: "sensors/#", qos: 1 }] }],
      },
      "bridge view test config",
    );
    const browser = await launchBrowser();
    try {
      const { page, errors } = await openPage(browser);
      await signIn(page, edge.admin!.url, TOKEN);
      await page.waitForSelector('nav a[data-page="bridges"]');
      const nav = await page.$eval("nav", (n) => n.textContent ?? "");
      assert.ok(nav.includes("Bridges") && !nav.includes("Nodes"), nav);
      await show(page, "bridges");
      const text = await waitForText(page, "#bridges-list", (t) => t.includes("cloud"));
      assert.match(text, /false/, "the bridge is shown as not connected");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await edge.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
