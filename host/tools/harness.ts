#!/usr/bin/env node
/**
 * Run a plugin against recorded messages, no broker needed:
 *
 *   npm run harness -- --plugin acl messages.jsonl            dist/plugins/acl.wasm + its config.example.json
 *   npm run harness -- --plugin acl --native messages.jsonl   the same plugin's native twin
 *   npm run harness -- --wasm x.wasm --config cfg.json msgs.json [--json]
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createHarness, parseMessages, type HarnessResult } from "../harness.js";
import type { PluginSpec } from "../plugin-slot.js";
// Not from ./asc.js: importing the AssemblyScript compiler makes it read process.argv (--wasm).
import { ROOT } from "./root.js";

const USAGE = `usage: npm run harness -- (--plugin NAME [--native] | --wasm FILE | --native-file FILE) [--config FILE|JSON] [--json] [--no-fuel] MESSAGES

MESSAGES is a JSON array or JSON Lines file of messages:
  {"hook":"publish","topic":"sensors/1/temp","payload":{"value":21.5},"clientId":"dev-1","username":"alice","qos":1}
hook is one of connect, subscribe, publish (default), deliver, persist, tick, auth.
auth (enhanced authentication): "topic" is the method, "payload" the data, "flags" the step
(0 CONNECT, 1 AUTH 0x18, 2 AUTH 0x19); the state a step keeps goes to the next step of the same
"clientId" (or give "authState"); "tlsExporter" (string or {"base64":...}) is the connection's
channel binding (RFC 9266) for SCRAM-SHA-256-PLUS; a success shows the "identity" the plugin named.
MQTT 5 fields (ABI v2): "protocolVersion", "userProperties":[["k","v"]], "contentType",
"responseTopic", "correlationData" (string or {"base64":...}), "payloadFormat", "messageExpiry",
"sessionExpiry" (connect), "noLocal", "retainAsPublished", "retainHandling",
"subscriptionIdentifier" (subscribe).`;

function fail(message: string): never {
  process.stderr.write(`harness: ${message}\n`);
  process.exit(2);
}

function formatResult(r: HarnessResult, topic: string | undefined): string {
  let line = `#${r.index} ${r.hook}${topic !== undefined ? ` ${topic}` : ""} → ${r.verdict}`;
  if (r.returnCode !== undefined) line += ` (return code ${r.returnCode})`;
  if (r.reasonCode !== undefined) line += ` (reason code 0x${r.reasonCode.toString(16)}${r.reasonString !== undefined ? ` ${JSON.stringify(r.reasonString)}` : ""})`;
  else if (r.reasonString !== undefined) line += ` (reason ${JSON.stringify(r.reasonString)})`;
  if (r.trap) line += ` [trap: ${r.trap}]`;
  if (r.changed) line += `  changed ${JSON.stringify(r.changed)}`;
  if (r.ttlSec !== undefined) line += `  ttl ${r.ttlSec}s`;
  if (r.auth) line += `  auth ${r.auth.result}${r.auth.data !== undefined ? ` data ${JSON.stringify(r.auth.data)}` : ""}${r.auth.state !== undefined ? ` state ${JSON.stringify(r.auth.state)}` : ""}`;
  for (const p of r.published) line += `\n    publish ${p.topic} ${JSON.stringify(p.payload)} qos=${p.qos}${p.retain ? " retain" : ""}${p.properties ? ` properties ${JSON.stringify(p.properties)}` : ""}`;
  for (const l of r.logs) line += `\n    log ${l}`;
  return line;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      plugin: { type: "string" },
      native: { type: "boolean", default: false },
      wasm: { type: "string" },
      "native-file": { type: "string" },
      config: { type: "string" },
      json: { type: "boolean", default: false },
      "no-fuel": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length !== 1) fail(`give exactly one messages file\n${USAGE}`);
  let spec: PluginSpec;
  let configFile: string | undefined = values.config;
  if (values.plugin) {
    const dir = join(ROOT, "plugins-as", values.plugin);
    if (!existsSync(dir)) fail(`no plugin named ${values.plugin} in plugins-as/`);
    spec = values.native
      ? { name: values.plugin, native: join(ROOT, "dist/plugins-as", values.plugin, "native.js") }
      : { name: values.plugin, wasm: join(ROOT, "dist/plugins", `${values.plugin}.wasm`) };
    configFile ??= join(dir, "config.example.json");
  } else if (values.wasm) {
    spec = { name: "plugin", wasm: values.wasm };
  } else if (values["native-file"]) {
    spec = { name: "plugin", native: values["native-file"] };
  } else {
    fail(`name a plugin\n${USAGE}`);
  }
  if (configFile !== undefined) {
    const text = configFile.trim().startsWith("{") ? configFile : existsSync(configFile) ? readFileSync(configFile, "utf8") : fail(`config ${configFile} not found`);
    try {
      spec.config = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      fail(`config ${configFile}: ${(err as Error).message}`);
    }
  }
  spec.onError = "fail-closed";
  const file = positionals[0]!;
  if (!existsSync(file)) fail(`messages file ${file} not found`);
  const messages = parseMessages(readFileSync(file, "utf8"), file);
  const harness = await createHarness(spec, { meterFuel: !values["no-fuel"] });
  try {
    messages.forEach((m, i) => {
      const r = harness.run(m, i);
      process.stdout.write(`${values.json ? JSON.stringify(r) : formatResult(r, m.topic)}\n`);
    });
  } finally {
    harness.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `npm run harness ... | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => process.exit(err.code === "EPIPE" ? 0 : 1));
  main().catch((err: Error) => fail(err.message));
}
