// The web dashboard end to end: a real broker (LMDB, the filter plugin, a
// token), real MQTT clients, and Debian's chromium driven by puppeteer-core.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser } from "puppeteer-core";
import type { RunningBroker } from "../broker/server.js";
import { CHROMIUM, clickRow, openPage, show, signIn, startDashboard, waitForText, type DashboardRig } from "./dashboard-support.js";
import { collect, connect, end, settle, subscribe, tempDir, wasm } from "./helpers.js";

const TOKEN = "dashboard-token-0123456789";
const XSS_ID = "<img src=x onerror=alert(1)>";
const XSS_TOPIC = "xss/<script>alert(3)</script>";
const XSS_PAYLOAD = "<img src=x onerror=alert(4)><script>alert(5)</script>";

describe("dashboard in a real browser", { skip: CHROMIUM ? false : "chromium is not installed", timeout: 240_000 }, () => {
  let rig: DashboardRig | undefined;
  let broker: RunningBroker;
  let browser: Browser;
  let base: string;
  let mqttUrl: string;

  before(async () => {
    rig = await startDashboard(tempDir(), TOKEN, {
      plugins: [
        {
          name: "filter",
          wasm: wasm("filter"),
          watch: false,
          config: { action: "drop", onMissing: "pass", onInvalid: "drop", rules: [{ topic: "sensors/+/temp", field: "value", min: -40, max: 85 }] },
        },
      ],
    }, "dashboard test config");
    ({ broker, browser, base, mqttUrl } = rig);
  });
  after(() => rig?.close());

  test("the page loads without the token, with a strict CSP; the data routes still need the token", async () => {
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.doesNotMatch(csp, /'unsafe-eval'/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script in index.html");
    const js = await fetch(`${base}/assets/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    // Not one of the page's files: the guard wants the token, and with it there is nothing there.
    assert.equal((await fetch(`${base}/assets/..%2Fpackage.json`)).status, 401);
    assert.equal((await fetch(`${base}/assets/..%2Fpackage.json`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    assert.equal((await fetch(`${base}/clients`)).status, 401);
    assert.equal((await fetch(`${base}/dashboard/api/live`)).status, 401);
  });

  test("login with the token; the client list follows real clients; kick disconnects", async () => {
    const { page, errors } = await openPage(browser);
    try {
      await page.goto(`${base}/#clients`);
      await page.waitForSelector("#login");
      await page.type("#token", "wrong-token");
      await page.click("#login button[type=submit]");
      await waitForText(page, "#login-error", (t) => t.includes("not accepted"));
      await page.type("#token", TOKEN);
      await page.click("#login button[type=submit]");
      await page.waitForSelector("#client-list");
      assert.ok(!page.url().includes(TOKEN), "the token is never in the URL");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("wasmq.token")), TOKEN);
      assert.equal((await page.cookies()).length, 0, "no cookie holds the token");

      const a = await connect(mqttUrl, { clientId: "dash-client-a", username: "alice" });
      await waitForText(page, "#client-list", (t) => t.includes("dash-client-a") && t.includes("alice"));
      await end(a);
      await waitForText(page, "#client-list", (t) => !t.includes("dash-client-a"));

      const victim = await connect(mqttUrl, { clientId: "dash-victim" });
      const gone = new Promise<void>((resolve) => victim.once("close", () => resolve()));
      await waitForText(page, "#client-list", (t) => t.includes("dash-victim"));
      await clickRow(page, "#client-list", "dash-victim");
      await waitForText(page, "#client-details", (t) => t.includes("dash-victim"));
      await page.click("#client-details button.kick");
      await page.click("#client-details button.kick");
      await gone;
      await waitForText(page, "#client-list", (t) => !t.includes("dash-victim"));
      assert.equal(Object.keys((broker.aedes as unknown as { clients: object }).clients).includes("dash-victim"), false);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  test("disabling a plugin in the page changes what the broker does", async () => {
    const { page } = await openPage(browser);
    const sub = await connect(mqttUrl, { clientId: "dash-sub" });
    const pub = await connect(mqttUrl, { clientId: "dash-pub" });
    try {
      const got = collect(sub);
      await subscribe(sub, "sensors/#", 1);
      await signIn(page, base, TOKEN);
      await show(page, "plugins");
      await page.waitForSelector('section.plugin[data-plugin="filter"]');

      // Enabled: an out-of-range reading is dropped, an in-range one passes.
      await pub.publishAsync("sensors/1/temp", JSON.stringify({ value: 500 }), { qos: 1 });
      await pub.publishAsync("sensors/1/temp", JSON.stringify({ value: 20 }), { qos: 1 });
      await got.waitFor(1);
      await settle(sub);
      assert.deepEqual(got.messages.map((m) => JSON.parse(m.payload.toString()).value), [20]);

      await page.click('section.plugin[data-plugin="filter"] button.disable');
      await waitForText(page, 'section.plugin[data-plugin="filter"] .badge', (t) => t === "disabled");
      assert.equal(broker.chain.slot("filter")!.enabled, false);
      await pub.publishAsync("sensors/1/temp", JSON.stringify({ value: 500 }), { qos: 1 });
      await got.waitFor(2);
      assert.deepEqual(got.messages.map((m) => JSON.parse(m.payload.toString()).value), [20, 500]);

      await page.click('section.plugin[data-plugin="filter"] button.enable');
      await waitForText(page, 'section.plugin[data-plugin="filter"] .badge', (t) => t === "ready");
      assert.equal(broker.chain.slot("filter")!.enabled, true);
    } finally {
      await end(sub, pub);
      await page.close();
    }
  });

  test("XSS probe: hostile client ids, usernames, topics and payloads render as text", async () => {
    const { page, dialogs } = await openPage(browser);
    const hostile = await connect(mqttUrl, { clientId: XSS_ID, username: "<script>alert(2)</script>" });
    try {
      await subscribe(hostile, "xss/<b>bold</b>/#");
      await hostile.publishAsync(XSS_TOPIC, XSS_PAYLOAD, { qos: 1, retain: true });
      await signIn(page, base, TOKEN);
      await show(page, "clients");
      await waitForText(page, "#client-list", (t) => t.includes(XSS_ID));
      await clickRow(page, "#client-list", XSS_ID);
      await waitForText(page, "#client-details", (t) => t.includes("<script>alert(2)</script>") && t.includes("xss/<b>bold</b>/#"));

      await show(page, "topics");
      await waitForText(page, "#retained-list", (t) => t.includes(XSS_TOPIC));
      await clickRow(page, "#retained-list", XSS_TOPIC);
      await page.click("#retained-view button.mode-text");
      await waitForText(page, "#retained-view pre.payload", (t) => t === XSS_PAYLOAD);
      await waitForText(page, "#sub-list", (t) => t.includes("xss/<b>bold</b>/#"));

      await show(page, "logs");
      await page.select("#log-level", "debug");
      // The kick in the test before was logged with the client's id; the hostile id's lines render as text too.
      await waitForText(page, "#log-lines", (t) => t.includes("admin: client dash-victim disconnected"));

      const injected = await page.evaluate(() => ({
        imgs: document.querySelectorAll("img").length,
        bold: document.querySelectorAll("main b").length,
        scripts: [...document.querySelectorAll("script")].map((s) => s.getAttribute("src")),
      }));
      assert.equal(injected.imgs, 0, "no <img> was injected");
      assert.equal(injected.bold, 0, "no <b> was injected");
      assert.deepEqual(injected.scripts, ["/assets/app.js"], "no script element but the app's own");
      assert.deepEqual(dialogs, [], "no dialog fired");
    } finally {
      await hostile.publishAsync(XSS_TOPIC, "", { qos: 1, retain: true }).catch(() => {});
      await end(hostile);
      await page.close();
    }
  });
});
