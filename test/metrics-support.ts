// Reading a broker's Prometheus endpoint in tests: the text format parsed into
// "name{a="x",b="y"}" → value, labels in the order printed.
import assert from "node:assert/strict";
import type { TestBroker } from "./helpers.js";

export type Samples = Map<string, number>;

export function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

export async function scrape(broker: TestBroker): Promise<Samples> {
  const res = await fetch(`${broker.admin!.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  return parseMetrics(await res.text());
}

export function value(samples: Samples, key: string): number {
  const v = samples.get(key);
  assert.notEqual(v, undefined, `metric ${key} missing; have ${[...samples.keys()].filter((k) => k.startsWith(key.split("{")[0]!)).join(", ")}`);
  return v!;
}
