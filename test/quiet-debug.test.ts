// broker/quiet-debug.ts: without DEBUG, mqtt-packet's debug loggers are one
// shared empty function (no per-call garbage); with DEBUG set, the real
// `debug` package loads and prints what it is asked to. Each case runs in a
// fresh Node process that loads the broker the way the CLI does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./helpers.js";

const SCRIPT = `
import(${JSON.stringify(join(ROOT, "dist/broker/server.js"))}).then(async () => {
  const { createRequire } = await import("node:module");
  const require = createRequire(${JSON.stringify(join(ROOT, "dist/broker/server.js"))});
  const createDebug = require("debug");
  const mqttPacket = require("mqtt-packet");
  const parser = mqttPacket.parser();
  parser.parse(mqttPacket.generate({ cmd: "publish", topic: "a/b", payload: Buffer.from("x"), qos: 0 }));
  const a = createDebug("one"), b = createDebug("two");
  console.log(JSON.stringify({ shared: a === b, enabled: a.enabled }));
});
`;

function run(env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--input-type=module", "-e", SCRIPT], { cwd: ROOT, env }, (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr })));
  });
}

test("without DEBUG: every debug logger is one shared, disabled function", async () => {
  const env = { ...process.env };
  delete env.DEBUG;
  const { stdout, stderr } = await run(env);
  assert.deepEqual(JSON.parse(stdout.trim()), { shared: true, enabled: false });
  assert.equal(stderr, "");
});

test("with DEBUG=mqtt-packet:parser: the real debug package loads and prints the parser's lines", async () => {
  const { stdout, stderr } = await run({ ...process.env, DEBUG: "mqtt-packet:parser" });
  assert.deepEqual(JSON.parse(stdout.trim()), { shared: false, enabled: false });
  assert.match(stderr, /mqtt-packet:parser/);
});
