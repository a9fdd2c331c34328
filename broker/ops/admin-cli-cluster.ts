/** `wasmq admin cluster|deploy|rollback`: the cluster routes (admin-cluster.ts) from a shell. */
import { readFileSync } from "node:fs";
import { AdminCliError } from "./admin-cli.js";

/** admin-cli.ts' request: the target (address, token, TLS) is its business. */
type Call<T> = (t: T, method: string, path: string, payload?: Buffer) => Promise<unknown>;

interface NodeView {
  id: string;
  state: string;
  clients?: number;
  mqtt?: string | null;
  plugins?: Record<string, string | null>;
  redis?: { state: string };
}

const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 12) : "-");

export async function clusterCommand<T>(command: "cluster" | "deploy" | "rollback", name: string | undefined, rest: string[], ctx: { target: T; json: boolean; call: Call<T> }): Promise<string> {
  const { target, json, call } = ctx;
  if (command === "cluster") {
    if (name !== undefined) throw new AdminCliError(`wasmq admin cluster: unexpected argument "${name}"`, 2);
    const body = (await call(target, "GET", "/cluster")) as { node: string; redis: { state: string; url: string }; nodes: NodeView[]; deployed: Record<string, string> };
    if (json) return JSON.stringify(body, null, 2);
    const plugins = [...new Set(body.nodes.flatMap((n) => Object.keys(n.plugins ?? {})))].sort();
    const rows = body.nodes.map((n) => [n.id + (n.id === body.node ? " *" : ""), n.state, String(n.clients ?? "-"), n.redis?.state ?? "-", n.mqtt ?? "-", ...plugins.map((p) => short(n.plugins?.[p]))]);
    const headers = ["NODE", "STATE", "CLIENTS", "REDIS", "MQTT", ...plugins.map((p) => p.toUpperCase())];
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
    const deployed = Object.entries(body.deployed).map(([p, sha]) => `${p}=${short(sha)}`).join(" ") || "none";
    return [`Redis ${body.redis.url}: ${body.redis.state}; deployed: ${deployed}`, line(headers), ...rows.map(line)].join("\n");
  }
  if (name === undefined) throw new AdminCliError(`wasmq admin ${command}: give a plugin name${command === "deploy" ? " and a .wasm file" : ""}`, 2);
  if (command === "rollback") {
    if (rest.length > 0) throw new AdminCliError(`wasmq admin rollback: unexpected argument "${rest[0]}"`, 2);
    const body = (await call(target, "POST", `/plugins/${encodeURIComponent(name)}/rollback`)) as { plugin: string; sha256: string };
    return json ? JSON.stringify(body, null, 2) : `plugin ${body.plugin} rolled back on every node to sha256 ${body.sha256}`;
  }
  const [file, ...extra] = rest;
  if (file === undefined) throw new AdminCliError("wasmq admin deploy: give a plugin name and a .wasm file", 2);
  if (extra.length > 0) throw new AdminCliError(`wasmq admin deploy: unexpected argument "${extra[0]}"`, 2);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new AdminCliError(`wasmq admin deploy: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
  const body = (await call(target, "POST", `/plugins/${encodeURIComponent(name)}/deploy`, bytes)) as { plugin: string; sha256: string; size: number };
  return json ? JSON.stringify(body, null, 2) : `plugin ${body.plugin} deployed to every node (${body.size} bytes, sha256 ${body.sha256})`;
}
