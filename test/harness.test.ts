// The harness CLI (`npm run harness`) as a plugin author runs it: a child
// process over the sample message files in examples/messages/, with the real
// compiled plugins and their native twins. Checks the printed verdict lines
// exactly, the --json form, Wasm/native agreement, and the errors for bad input.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseMessages, runPlugin, type HarnessResult } from "../host/harness.js";
import { buildFixture } from "./fixtures.js";
import { native, ROOT, tempDir, wasm } from "./helpers.js";

const CLI = join(ROOT, "dist/host/tools/harness.js");
const ACL_SAMPLE = "examples/messages/acl.jsonl";
const FILTER_SAMPLE = "examples/messages/filter.jsonl";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function harness(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function ok(r: Run): string {
  assert.equal(r.code, 0, `harness failed: ${r.stderr}`);
  assert.equal(r.stderr, "");
  return r.stdout;
}

const ACL_EXPECTED = [
  "#0 publish public/news → continue",
  "#1 publish devices/dev-1/temp → continue",
  "#2 publish devices/dev-2/temp → drop",
  "#3 subscribe devices/dev-1/# → continue",
  "#4 subscribe devices/# → deny",
  "#5 subscribe # → continue",
  "#6 subscribe devices/+/secret → deny",
  "#7 publish devices/dev-1/cmd → drop",
  "#8 deliver devices/dev-1/temp → continue",
  "#9 deliver devices/dev-1/secret → drop",
];

const FILTER_EXPECTED = [
  "#0 publish sensors/dev-1/temp → continue",
  "#1 publish sensors/dev-1/temp → drop",
  "#2 publish sensors/dev-1/humidity → drop",
  "#3 publish sensors/dev-1/humidity → continue",
  "#4 publish sensors/dev-1/temp → drop",
  "#5 publish sensors/dev-1/temp → drop",
  "#6 publish sensors/dev-1/temp → continue",
  "#7 publish sensors/dev-1/battery → continue",
];

const lines = (text: string) => text.split("\n").slice(0, -1);

describe("harness CLI on the sample message files", () => {
  // Each run is a process loading the compiler toolchain: start them together, assert one by one.
  let runs: Record<"acl" | "aclNative" | "filter" | "filterNative", Run>;
  before(async () => {
    const [acl, aclNative, filter, filterNative] = await Promise.all([
      harness("--plugin", "acl", ACL_SAMPLE),
      harness("--plugin", "acl", "--native", ACL_SAMPLE),
      harness("--plugin", "filter", FILTER_SAMPLE),
      harness("--plugin", "filter", "--native", FILTER_SAMPLE),
    ]);
    runs = { acl: acl!, aclNative: aclNative!, filter: filter!, filterNative: filterNative! };
  });

  test("acl: one verdict line per message, in order", () => {
    assert.deepEqual(lines(ok(runs.acl)), ACL_EXPECTED);
  });

  test("filter: out-of-range, missing and non-JSON readings are dropped; base64 payloads are decoded", () => {
    assert.deepEqual(lines(ok(runs.filter)), FILTER_EXPECTED);
  });

  test("--native: the twins print exactly what the Wasm builds print", () => {
    assert.equal(ok(runs.aclNative), ok(runs.acl));
    assert.equal(ok(runs.filterNative), ok(runs.filter));
  });
});

describe("harness CLI output for every kind of outcome (probe fixture)", () => {
  let dir: string;
  let probe: string;

  before(async () => {
    probe = await buildFixture("probe");
    dir = tempDir("wasmq-harness-");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("return codes, changes, extra publishes (text and binary) and traps are printed", async () => {
    const file = join(dir, "probe.jsonl");
    writeFileSync(
      file,
      [
        '{"hook":"connect","clientId":"c1","username":"bad","password":"x"}',
        '{"hook":"subscribe","topic":"downgrade/x","qos":1}',
        '{"hook":"publish","topic":"rewrite/t1","payload":"moved"}',
        '{"hook":"publish","topic":"route/r1","payload":"copied"}',
        '{"hook":"publish","topic":"fault/abort","payload":"x"}',
        '{"hook":"deliver","topic":"shout/x","payload":"hi","clientId":"loud-1"}',
        '{"hook":"publish","topic":"route/bin","payload":{"base64":"AP8="}}',
      ].join("\n"),
    );
    const [text, json] = await Promise.all([harness("--wasm", probe, file), harness(`--wasm=${probe}`, "--json", file)]);
    assert.equal(
      ok(text!),
      [
        "#0 connect → deny (return code 4)",
        '#1 subscribe downgrade/x → continue  changed {"qos":0}',
        '#2 publish rewrite/t1 → continue  changed {"topic":"rewritten/t1"}',
        "#3 publish route/r1 → continue",
        '    publish routed/r1 "copied" qos=1',
        "#4 publish fault/abort → drop [trap: abort]",
        '#5 deliver shout/x → continue  changed {"payload":"HI"}',
        "#6 publish route/bin → continue",
        '    publish routed/bin "base64:AP8=" qos=1',
        "",
      ].join("\n"),
    );
    const none = { published: [], logs: [] };
    assert.deepEqual(
      lines(ok(json!)).map((l) => JSON.parse(l) as unknown),
      [
        { index: 0, hook: "connect", verdict: "deny", returnCode: 4, ...none },
        { index: 1, hook: "subscribe", verdict: "continue", changed: { qos: 0 }, ...none },
        { index: 2, hook: "publish", verdict: "continue", changed: { topic: "rewritten/t1" }, ...none },
        { index: 3, hook: "publish", verdict: "continue", published: [{ topic: "routed/r1", payload: "copied", qos: 1, retain: false }], logs: [] },
        { index: 4, hook: "publish", verdict: "drop", trap: "abort", ...none },
        { index: 5, hook: "deliver", verdict: "continue", changed: { payload: "HI" }, ...none },
        { index: 6, hook: "publish", verdict: "continue", published: [{ topic: "routed/bin", payload: "base64:AP8=", qos: 1, retain: false }], logs: [] },
      ],
    );
  });
});

describe("harness CLI refuses bad input with a clear message", { concurrency: true }, () => {
  let dir: string;
  before(() => {
    dir = tempDir("wasmq-harness-bad-");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function failing(r: Run): string {
    assert.notEqual(r.code, 0, "must exit non-zero");
    assert.equal(r.stdout, "", "no verdicts printed");
    assert.match(r.stderr, /^harness: /);
    return r.stderr;
  }

  test("a messages file that does not exist", async () => {
    const missing = join(dir, "nope.jsonl");
    assert.match(failing(await harness("--plugin", "acl", missing)), new RegExp(`messages file ${missing} not found`));
  });

  test("a malformed line is reported as file:line", async () => {
    const file = join(dir, "broken.jsonl");
    writeFileSync(file, '# comment\n{"topic":"a/b"}\n\n{"topic": a/b}\n');
    assert.match(failing(await harness("--plugin", "acl", file)), new RegExp(`${file}:4: not valid JSON`));
  });

  test("an unknown plugin", async () => {
    assert.match(failing(await harness("--plugin", "no-such-plugin", ACL_SAMPLE)), /no plugin named no-such-plugin in plugins-as\//);
  });

  test("a config the plugin refuses", async () => {
    assert.match(failing(await harness("--plugin", "acl", "--config", '{"default":"maybe"}', ACL_SAMPLE)), /plugin "acl": refused: config key "default" must be equal to one of the allowed values/);
  });
});

describe("every sample in examples/messages/ runs its plugin, and the twins agree on it", () => {
  const dir = join(ROOT, "examples/messages");
  const samples = readdirSync(dir).filter((f) => f.endsWith(".jsonl")).sort();

  test("there is a sample for every example plugin", () => {
    // The shipped examples only: a plugin an author scaffolds needs no sample here.
    const examples = ["acl", "aggregate", "auth", "filter", "ratelimit", "retention", "router", "transform"];
    assert.deepEqual(samples, examples.map((p) => `${p}.jsonl`));
  });

  const decided = (r: HarnessResult) => r.verdict !== "continue" || r.changed !== undefined || r.published.length > 0 || r.ttlSec !== undefined;

  for (const sample of samples) {
    const name = sample.slice(0, -".jsonl".length);
    test(`${sample}: Wasm and native give identical results, and the sample shows the plugin deciding`, async () => {
      const file = join(dir, sample);
      const messages = parseMessages(readFileSync(file, "utf8"), file);
      const config = JSON.parse(readFileSync(join(ROOT, "plugins-as", name, "config.example.json"), "utf8")) as Record<string, unknown>;
      // A broker-sized budget: auth's PBKDF2 needs far more than the 10 M default.
      const limits = { fuel: 1_000_000_000 };
      const fromWasm = await runPlugin({ name, wasm: wasm(name), config, limits, onError: "fail-closed" }, messages);
      const fromNative = await runPlugin({ name, native: native(name), config, limits, onError: "fail-closed" }, messages);
      assert.deepEqual(fromWasm, fromNative);
      assert.deepEqual(fromWasm.filter((r) => r.trap).map((r) => r.index), [], "no message traps");
      assert.ok(fromWasm.some(decided), "at least one message is dropped, denied, changed or causes a publish");
      assert.ok(fromWasm.some((r) => !decided(r)) || name === "transform", "and at least one passes untouched");
    });
  }
});
