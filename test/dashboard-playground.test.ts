// The dashboard's playground runs a plugin's .wasm in chromium with the
// broker's own ABI code; its verdicts and fuel must equal `npm run harness`'s
// (host/harness.ts in Node) on the same build, config and messages.
import assert from "node:assert/strict";
import { pbkdf2Sync } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "puppeteer-core";
import type { RunningBroker } from "../broker/server.js";
import { createHarness, type HarnessMessage, type HarnessResult } from "../host/harness.js";
import { CHROMIUM, openPage, show, signIn, startDashboard, waitForText, type DashboardRig } from "./dashboard-support.js";
import { ROOT, tempDir, wasm } from "./helpers.js";

const TOKEN = "playground-token-0123456789";
const FUEL = 50_000_000;
const FILTER_CONFIG = { action: "drop", onMissing: "drop", onInvalid: "drop", rules: [{ topic: "sensors/+/temp", field: "value", min: -40, max: 85 }] };

type BrowserResult = HarnessResult & { fuel: number | null };

async function harnessRun(wasmFile: string, config: Record<string, unknown>, messages: HarnessMessage[], fuel = FUEL): Promise<{ results: HarnessResult[]; fuel: number[] }> {
  const harness = await createHarness({ name: "plugin", wasm: wasmFile, config, onError: "fail-closed", limits: { fuel } });
  try {
    const results: HarnessResult[] = [];
    const fuel: number[] = [];
    messages.forEach((m, i) => {
      results.push(harness.run(m, i));
      fuel.push(harness.lastFuelUsed());
    });
    return { results, fuel };
  } finally {
    harness.close();
  }
}

async function runInPage(page: Page, config: Record<string, unknown> | null, messages: HarnessMessage[], fuel = FUEL): Promise<BrowserResult[]> {
  if (config) await page.$eval("#pg-config", (el, v) => ((el as HTMLTextAreaElement).value = v), JSON.stringify(config));
  await page.$eval("#pg-fuel", (el, v) => ((el as HTMLInputElement).value = v), String(fuel));
  await page.$eval("#pg-messages", (el, v) => ((el as HTMLTextAreaElement).value = v), messages.map((m) => JSON.stringify(m)).join("\n"));
  await page.$eval("#pg-json", (el) => (el.textContent = ""));
  await page.click("#pg-run");
  await waitForText(page, "#pg-status", (t) => t.includes("messages") || t === "", 60_000).catch(() => {});
  const error = await page.$eval("#pg-error", (el) => el.textContent).catch(() => null);
  if (error) throw new Error(`the playground failed: ${error}`);
  const text = await waitForText(page, "#pg-json", (t) => t.startsWith("["), 60_000);
  return JSON.parse(text) as BrowserResult[];
}

function withoutFuel(results: BrowserResult[]): HarnessResult[] {
  return results.map(({ fuel: _fuel, ...rest }) => rest);
}

describe("dashboard playground", { skip: CHROMIUM ? false : "chromium is not installed", timeout: 240_000 }, () => {
  let rig: DashboardRig | undefined;
  let broker: RunningBroker;
  let browser: Browser;

  before(async () => {
    rig = await startDashboard(tempDir(), TOKEN, {
      persistence: "memory",
      plugins: [{ name: "filter", wasm: wasm("filter"), watch: false, config: FILTER_CONFIG, limits: { fuel: FUEL } }],
    }, "playground test config", "warn");
    ({ broker, browser } = rig);
  });
  after(() => rig?.close());

  test("a plugin of the broker: the browser's verdicts and fuel equal the harness's", async () => {
    const { page, errors } = await openPage(browser);
    try {
      await signIn(page, broker.admin!.url, TOKEN);
      await show(page, "playground");
      await page.waitForSelector('#pg-plugin option[value="filter"]');
      await page.select("#pg-plugin", "filter");
      await waitForText(page, "#pg-source", (t) => t.includes("sha256"));
      assert.deepEqual(JSON.parse(await page.$eval("#pg-config", (el) => (el as HTMLTextAreaElement).value)), FILTER_CONFIG, "the page starts from the plugin's config");
      const messages: HarnessMessage[] = [
        { topic: "sensors/1/temp", payload: { value: 21.5 }, clientId: "dev-1" },
        { topic: "sensors/1/temp", payload: { value: 500 }, clientId: "dev-1" },
        { topic: "sensors/1/temp", payload: "not json", clientId: "dev-1" },
        { topic: "sensors/1/temp", payload: { other: 1 }, clientId: "dev-1" },
        { topic: "sensors/2/humidity", payload: { value: 300 }, clientId: "dev-2" },
        { hook: "deliver", topic: "sensors/1/temp", payload: { value: 20 }, clientId: "dev-3", peer: "dev-1" },
      ];
      const inBrowser = await runInPage(page, null, messages);
      const inNode = await harnessRun(wasm("filter"), FILTER_CONFIG, messages);
      assert.deepEqual(withoutFuel(inBrowser), inNode.results);
      assert.deepEqual(
        inBrowser.map((r) => r.verdict),
        ["continue", "drop", "drop", "drop", "continue", "continue"],
      );
      // Only the hooks the plugin has are called (filter: publish); the others use no fuel.
      assert.deepEqual(
        inBrowser.map((r) => r.fuel ?? -1).slice(0, 5),
        inNode.fuel.slice(0, 5),
        "the same metered build uses the same fuel per message in both",
      );
      assert.ok(inBrowser[0]!.fuel! > 0);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  test("an uploaded .wasm using the SDK's crypto (auth, PBKDF2): same verdicts and fuel as the harness", async () => {
    const { page, errors } = await openPage(browser);
    try {
      await signIn(page, broker.admin!.url, TOKEN);
      await show(page, "playground");
      const input = await page.$("#pg-file");
      await (input as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(wasm("auth"));
      await waitForText(page, "#pg-source", (t) => t.includes("auth.wasm") && t.includes("sha256"));
      // The example's users, plus one whose password this test knows.
      const config = JSON.parse(readFileSync(join(ROOT, "plugins-as/auth/config.example.json"), "utf8")) as { users: unknown[] };
      const salt = Buffer.from("playground-salt!");
      const hash = pbkdf2Sync("wonderland", salt, 2000, 32, "sha256");
      config.users.push({ username: "alice2", hash: `pbkdf2-sha256$2000$${salt.toString("base64")}$${hash.toString("base64")}` });
      const messages: HarnessMessage[] = [
        { hook: "connect", username: "alice2", password: "wonderland", clientId: "alice2-laptop" },
        { hook: "connect", username: "alice2", password: "wrong", clientId: "alice2-laptop" },
        { hook: "connect", username: "alice2", password: "wonderland", clientId: "laptop" },
        { hook: "connect", username: "alice", password: "wonderland", clientId: "alice-laptop" },
        { hook: "connect", username: "mallory", password: "x", clientId: "mallory-1" },
        { hook: "connect", clientId: "anonymous" },
      ];
      // auth does the same PBKDF2 work for every user (the largest iteration count configured, 10000 here): give it the fuel.
      const AUTH_FUEL = 1_000_000_000;
      const inBrowser = await runInPage(page, config as unknown as Record<string, unknown>, messages, AUTH_FUEL);
      const inNode = await harnessRun(wasm("auth"), config as unknown as Record<string, unknown>, messages, AUTH_FUEL);
      assert.deepEqual(withoutFuel(inBrowser), inNode.results);
      assert.equal(inBrowser[0]!.verdict, "continue", "alice's password checks out in the browser's PBKDF2");
      assert.equal(inBrowser[1]!.returnCode, 4);
      assert.equal(inBrowser[2]!.returnCode, 2, "the client id must fit clientIdPattern");
      assert.equal(inBrowser[5]!.returnCode, 5, "anonymous clients are refused as not authorized");
      assert.deepEqual(
        inBrowser.map((r) => r.fuel),
        inNode.fuel,
        "host crypto charges fuel the same in both",
      );

      // Too little fuel: every call traps; the failure policy answers, and after five traps the breaker
      // opens and answers without calling — in the page as in the harness.
      const starved = await runInPage(page, null, messages, 20_000_000);
      const starvedNode = await harnessRun(wasm("auth"), config as unknown as Record<string, unknown>, messages, 20_000_000);
      assert.deepEqual(withoutFuel(starved), starvedNode.results);
      assert.deepEqual(starved.map((r) => r.trap ?? null), ["fuel", "fuel", "fuel", "fuel", "fuel", null]);
      assert.ok(starved.every((r) => r.returnCode === 3), "fail-closed refuses a connect as server unavailable");
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
});
