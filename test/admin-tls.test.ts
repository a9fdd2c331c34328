// The admin listener over HTTPS (metrics.tls), `wasmq admin` against it
// (--ca, --insecure, --config pinning the broker's certificate), and the
// config rules: off loopback the admin API needs a token and TLS (or an
// explicit "tls": false), and loopback is judged by address, not by name.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError, isLoopbackHost, parseRawConfig, resolveConfig } from "../broker/config.js";
import { makeSelfSignedCert } from "./broker-support.js";
import { adminCli, scratchDir, startTestBroker, type TestBroker } from "./helpers.js";

const TOKEN = "tls-admin-token-0123456789";

/** A self-signed certificate for a name that is not 127.0.0.1 (no IP SAN). */
function certForOtherName(dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, "other-cert.pem");
  const keyFile = join(dir, "other-key.pem");
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=broker.internal", "-addext", "subjectAltName=DNS:broker.internal", "-keyout", keyFile, "-out", certFile], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { certFile, keyFile };
}

function configError(raw: unknown, pattern: RegExp): void {
  assert.throws(
    () => resolveConfig(parseRawConfig(raw, "test config"), null),
    (err: Error) => err instanceof ConfigError && pattern.test(err.message),
  );
}

describe("admin API over HTTPS", { timeout: 60_000 }, () => {
  let broker: TestBroker;
  let certFile: string;
  let dir: string;
  before(async () => {
    dir = scratchDir();
    ({ certFile } = makeSelfSignedCert(dir));
    broker = await startTestBroker({ persistence: "memory", metrics: { port: 0, token: TOKEN, tls: { cert: certFile, key: join(dir, "key.pem") } } });
  });
  after(() => broker.stop());

  test("the admin listener speaks HTTPS with the configured certificate", async () => {
    assert.match(broker.admin!.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const status = await new Promise<number>((resolve, reject) => {
      get(`${broker.admin!.url}/health`, { ca: readFileSync(certFile), headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    assert.equal(status, 200);
    // Plain HTTP on the same port gets no answer from the API.
    const plain = await fetch(`${broker.admin!.url.replace("https:", "http:")}/health`).then(
      (r) => r.status,
      () => "refused",
    );
    assert.notEqual(plain, 200);
  });

  test("wasmq admin: https URL with --ca; an untrusted certificate is a clear error; --insecure skips the check", async () => {
    const common = ["--url", broker.admin!.url, "--token", TOKEN];
    const trusted = await adminCli(["plugins", ...common, "--ca", certFile]);
    assert.equal(trusted.code, 0, trusted.err);
    assert.match(trusted.out, /no plugins configured/);
    const untrusted = await adminCli(["plugins", ...common]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.err, /SELF_SIGNED|UNABLE_TO_VERIFY/);
    assert.match(untrusted.err, /--ca FILE.*--insecure/);
    const insecure = await adminCli(["plugins", ...common, "--insecure"]);
    assert.equal(insecure.code, 0, insecure.err);
  });

  test("wasmq admin --config trusts and pins the broker's own certificate, whatever name it carries", async () => {
    const other = certForOtherName(dir);
    const pinned = await startTestBroker({ persistence: "memory", metrics: { port: 0, token: TOKEN, tls: { cert: other.certFile, key: other.keyFile } } });
    try {
      const file = join(scratchDir(), "wasmq.json");
      writeFileSync(file, JSON.stringify({ metrics: { port: pinned.admin!.address.port, token: TOKEN, tls: { cert: other.certFile, key: other.keyFile } } }));
      const viaConfig = await adminCli(["plugins", "--config", file]);
      assert.equal(viaConfig.code, 0, viaConfig.err);
      // The same CA without the pin fails: the certificate does not name 127.0.0.1.
      const caOnly = await adminCli(["plugins", "--url", pinned.admin!.url, "--token", TOKEN, "--ca", other.certFile]);
      assert.equal(caOnly.code, 1);
      assert.match(caOnly.err, /ERR_TLS_CERT_ALTNAME_INVALID/);
    } finally {
      await pinned.stop();
    }
  });
});

describe("admin API exposure rules", () => {
  test("off loopback, metrics.tls is required (a config error naming the key) unless it is false", () => {
    configError({ metrics: { host: "0.0.0.0", port: 0, token: TOKEN } }, /key "metrics\.tls": required when "metrics\.host" is 0\.0\.0\.0/);
    const optedOut = resolveConfig(parseRawConfig({ metrics: { host: "0.0.0.0", port: 0, token: TOKEN, tls: false } }, "test config"), null);
    assert.equal(optedOut.metrics!.tls, null);
    assert.equal(resolveConfig(parseRawConfig({ metrics: { port: 0 } }, "test config"), null).metrics!.tls, null, "loopback: plain HTTP by default");
    configError({ metrics: { port: 0, tls: { cert: "/nonexistent/cert.pem", key: "/nonexistent/key.pem" } } }, /key "metrics\.tls\.cert": file \/nonexistent\/cert\.pem does not exist/);
  });

  test("metrics.allowedHosts takes names or name:port; anything else names the key", () => {
    const ok = resolveConfig(parseRawConfig({ metrics: { port: 0, allowedHosts: ["broker.example", "broker.example:8443", "[::1]:9464"] } }, "test config"), null);
    assert.deepEqual(ok.metrics!.allowedHosts, ["broker.example", "broker.example:8443", "[::1]:9464"]);
    for (const bad of ["http://broker.example", "broker.example/path", "", "a b"]) {
      assert.throws(() => parseRawConfig({ metrics: { allowedHosts: [bad] } }, "test config"), /metrics\.allowedHosts\.0/, bad);
    }
  });

  test("loopback is judged by address: a name that starts with 127. is public", () => {
    for (const h of ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost"]) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ["127.evil.example", "127.0.0.1.nip.io", "0.0.0.0", "::", "10.0.0.1", "::ffff:10.0.0.1", "broker.lan"]) assert.equal(isLoopbackHost(h), false, h);
    configError({ metrics: { host: "127.evil.example", port: 0 } }, /key "metrics\.token": required when "metrics\.host" is 127\.evil\.example/);
  });
});
