// The admin listener's request guard (broker/ops/admin-guard.ts): cross-site
// requests and DNS rebinding are refused with the plugin left as it was — by
// raw HTTP requests shaped like a browser's, and by a real Chromium loading an
// attacker's page.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { buildFixture } from "./fixtures.js";
import { connect, end, scratchDir, startTestBroker, type TestBroker } from "./helpers.js";

const TOKEN = "guard-token-0123456789";

/** One request with full control of the headers (fetch would set Host and Origin itself). */
function raw(
  broker: TestBroker,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Record<string, unknown> }> {
  const { port } = broker.admin!.address;
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers: { host: `127.0.0.1:${port}`, authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function probeEnabled(broker: TestBroker): Promise<boolean> {
  const r = await raw(broker, "GET", "/plugins/probe");
  assert.equal(r.status, 200);
  return r.body.enabled as boolean;
}

describe("admin API request guard", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  let port: number;
  before(async () => {
    const pluginFile = join(scratchDir(), "probe.wasm");
    copyFileSync(await buildFixture("probe"), pluginFile);
    broker = await startTestBroker({
      persistence: "memory",
      metrics: { port: 0, token: TOKEN, allowedHosts: ["broker.example", "pinned.example:1"] },
      plugins: [{ name: "probe", wasm: pluginFile, watch: false }],
    });
    port = broker.admin!.address.port;
  });
  after(() => broker.stop());

  test("the issue's request: a cross-origin POST is refused (403) and the plugin stays enabled", async () => {
    // curl -X POST -H 'Origin: http://evil.example' .../plugins/probe/disable, as in issue #11
    const simple = await raw(broker, "POST", "/plugins/probe/disable", { origin: "http://evil.example" });
    assert.equal(simple.status, 403);
    // Even with the custom header (a browser would have had to pass a preflight first).
    const withHeader = await raw(broker, "POST", "/plugins/probe/disable", { origin: "http://evil.example", "x-wasmq-request": "1" });
    assert.equal(withHeader.status, 403);
    assert.match(String(withHeader.body.error), /cross-origin/);
    // Another port on the same host is another origin.
    const otherPort = await raw(broker, "POST", "/plugins/probe/disable", { origin: `http://127.0.0.1:${port + 1}`, "x-wasmq-request": "1" });
    assert.equal(otherPort.status, 403);
    const sandboxed = await raw(broker, "POST", "/plugins/probe/disable", { origin: "null", "x-wasmq-request": "1" });
    assert.equal(sandboxed.status, 403);
    for (const site of ["cross-site", "same-site"]) {
      const r = await raw(broker, "DELETE", "/clients/someone", { "sec-fetch-site": site, "x-wasmq-request": "1" });
      assert.equal(r.status, 403, site);
    }
    assert.equal(await probeEnabled(broker), true);
  });

  test("a state-changing request without X-Wasmq-Request: 1 is refused; with it (and a same-origin Origin) it works", async () => {
    const bare = await raw(broker, "POST", "/plugins/probe/disable", { "content-type": "application/x-www-form-urlencoded" });
    assert.equal(bare.status, 403);
    assert.match(String(bare.body.error), /X-Wasmq-Request: 1/);
    assert.equal((await raw(broker, "POST", "/plugins/probe/disable", { "x-wasmq-request": "yes" })).status, 403);
    assert.equal(await probeEnabled(broker), true);

    const sameOrigin = await raw(broker, "POST", "/plugins/probe/disable", { "x-wasmq-request": "1", origin: `http://127.0.0.1:${port}`, "sec-fetch-site": "same-origin" });
    assert.equal(sameOrigin.status, 200);
    assert.equal(await probeEnabled(broker), false);
    assert.equal((await raw(broker, "POST", "/plugins/probe/enable", { "x-wasmq-request": "1" })).status, 200);
    assert.equal(await probeEnabled(broker), true);
  });

  test("DNS rebinding: a Host header that does not name the listener is refused (421), for reads and writes", async () => {
    const c = await connect(broker.url, { clientId: "secret-device" });
    try {
      const read = await raw(broker, "GET", "/clients", { host: `evil.example:${port}` });
      assert.equal(read.status, 421);
      assert.doesNotMatch(JSON.stringify(read.body), /secret-device/);
      assert.match(String(read.body.error), /does not name this listener/);
      const write = await raw(broker, "POST", "/plugins/probe/disable", { host: `evil.example:${port}`, "x-wasmq-request": "1", origin: `http://evil.example:${port}` });
      assert.equal(write.status, 421);
      // The listener's own address on another port, a name that merely starts with 127., and no Host at all.
      assert.equal((await raw(broker, "GET", "/clients", { host: `127.0.0.1:${port + 1}` })).status, 421);
      assert.equal((await raw(broker, "GET", "/clients", { host: `127.0.0.1.evil.example:${port}` })).status, 421);
      assert.equal((await raw(broker, "GET", "/clients", { host: "pinned.example:2" })).status, 421, "an allowedHosts entry with a port pins it");
      assert.equal(await probeEnabled(broker), true);

      // The listener's own names.
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, "broker.example", `broker.example:${port}`, "pinned.example:1"]) {
        const ok = await raw(broker, "GET", "/clients", { host });
        assert.equal(ok.status, 200, host);
      }
    } finally {
      await end(c);
    }
  });

  test("cross-site reads are refused; top-level navigation and non-browser clients are not", async () => {
    assert.equal((await raw(broker, "GET", "/clients", { "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors" })).status, 403);
    assert.equal((await raw(broker, "GET", "/metrics", { "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image" })).status, 403);
    assert.equal((await raw(broker, "GET", "/clients", { origin: "http://evil.example" })).status, 403);
    assert.equal((await raw(broker, "GET", "/clients", { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe" })).status, 403, "framing is not navigation");
    assert.equal((await raw(broker, "GET", "/health", { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" })).status, 200);
    assert.equal((await raw(broker, "GET", "/health", { "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors" })).status, 200);
    const plain = await raw(broker, "GET", "/health");
    assert.equal(plain.status, 200);
    assert.equal(plain.headers["cross-origin-resource-policy"], "same-origin");
    assert.equal(plain.headers["access-control-allow-origin"], undefined);
  });

  test("a CORS preflight is never granted", async () => {
    const pre = await raw(broker, "OPTIONS", "/plugins/probe/disable", {
      origin: "http://evil.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "x-wasmq-request",
    });
    assert.equal(pre.status, 403);
    assert.equal(pre.headers["access-control-allow-origin"], undefined);
    assert.equal(pre.headers["access-control-allow-headers"], undefined);
  });

  test("live streams: a WebSocket upgrade passes the same guard before any upgrade handler sees it", async () => {
    const wss = new WebSocketServer({ noServer: true });
    let handled = 0;
    broker.admin!.onUpgrade((req, socket, head) => {
      if (req.url !== "/live") return false;
      handled++;
      wss.handleUpgrade(req, socket, head, (ws) => ws.send("hello", () => ws.close()));
      return true;
    });
    const open = (headers: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/live`, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
        ws.once("message", (data: Buffer) => resolve(`message:${data.toString()}`));
        ws.once("unexpected-response", (_req, res) => {
          resolve(`refused:${res.statusCode}`);
          ws.terminate();
        });
        ws.once("error", () => resolve("error"));
      });
    assert.equal(await open({ origin: "http://evil.example" }), "refused:403", "cross-site WebSocket hijacking");
    assert.equal(await open({ host: `evil.example:${port}` }), "refused:421", "DNS rebinding");
    assert.equal(await open({ authorization: "Bearer wrong-token-0123456789" }), "refused:401");
    assert.equal(handled, 0, "no refused upgrade reached the handler");
    assert.equal(await open({ origin: `http://127.0.0.1:${port}` }), "message:hello");
    assert.equal(handled, 1);
    wss.close();
  });

  test("the token: wrong tokens of any length are 401, the scheme name is case-insensitive", async () => {
    for (const authorization of ["Bearer x", `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, "", `Bearer ${"y".repeat(5000)}`]) {
      assert.equal((await raw(broker, "GET", "/health", { authorization })).status, 401, authorization.slice(0, 30));
    }
    assert.equal((await raw(broker, "GET", "/health", { authorization: `bearer ${TOKEN}` })).status, 200);
  });
});

describe("admin API request guard in a real browser", { timeout: 90_000 }, () => {
  let broker: TestBroker;
  let evil: Server;
  before(async () => {
    const pluginFile = join(scratchDir(), "probe.wasm");
    copyFileSync(await buildFixture("probe"), pluginFile);
    // No token: the loopback default, where only the guard stands between a web page and the API.
    broker = await startTestBroker({ persistence: "memory", metrics: { port: 0 }, plugins: [{ name: "probe", wasm: pluginFile, watch: false }] });
  });
  after(async () => {
    await broker.stop();
    await new Promise<void>((r) => (evil ? evil.close(() => r()) : r()));
  });

  test("an attacker's page (form POST, no-cors fetch, cross-origin read) changes nothing and reads nothing", async () => {
    const adminPort = broker.admin!.address.port;
    const c = await connect(broker.url, { clientId: "secret-device" });
    // The attacker's page (served as evil.example, a name Chromium maps to 127.0.0.1):
    // a form POST (a "simple" request, no preflight) to disable the plugin, a
    // no-cors fetch doing the same, and a read of /clients. (DNS rebinding is the
    // Host-header test above: a headless browser cannot re-point a name mid-page.)
    const page = `<!doctype html><body><pre id="out">pending</pre>
<iframe name="sink"></iframe>
<form id="f" method="POST" target="sink" action="http://127.0.0.1:${adminPort}/plugins/probe/disable"></form>
<script>
(async () => {
  const out = [];
  document.getElementById("f").submit();
  // (Refused, and its answer carries Cross-Origin-Resource-Policy: same-origin, so the browser reports a network error.)
  try { await fetch("http://127.0.0.1:${adminPort}/plugins/probe/disable", { method: "POST", mode: "no-cors" }); out.push("nocors:answered"); } catch (e) { out.push("nocors:blocked"); }
  try { const r = await fetch("http://127.0.0.1:${adminPort}/clients"); out.push("read:" + (await r.text()).includes("secret-device")); } catch (e) { out.push("read:blocked"); }
  await new Promise((r) => setTimeout(r, 500));
  out.push("done");
  document.getElementById("out").textContent = out.join(" ");
})();
</script></body>`;
    evil = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(page));
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", () => r()));
    const evilPort = (evil.address() as AddressInfo).port;
    const profile = scratchDir("wasmq-chromium-");
    const dom = await new Promise<string>((resolve, reject) => {
      execFile(
        "chromium",
        [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          `--user-data-dir=${profile}`,
          "--host-resolver-rules=MAP evil.example 127.0.0.1",
          "--virtual-time-budget=10000",
          "--dump-dom",
          `http://evil.example:${evilPort}/`,
        ],
        { timeout: 60_000 },
        (err, stdout, stderr) => (err && !stdout ? reject(new Error(`chromium failed: ${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    try {
      const out = /<pre id="out">([^<]*)<\/pre>/.exec(dom)?.[1] ?? "";
      assert.match(out, /done$/, `the page ran: ${dom.slice(0, 500)}`);
      assert.match(out, /read:blocked/, "the page cannot read /clients");
      const r = await raw(broker, "GET", "/plugins/probe");
      assert.equal(r.body.enabled, true, "neither the form POST nor the no-cors fetch disabled the plugin");
    } finally {
      await end(c);
    }
  });
});
