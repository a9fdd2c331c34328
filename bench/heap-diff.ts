/**
 * What a broker's connections are made of, from two V8 heap snapshots taken
 * before and after N clients connected (`WASMQ_BENCH_HEAPSNAPSHOT=DIR` with an
 * idle scenario and `--conns N` writes them; bench/README.md "conns2", "mem3").
 *
 *   node dist/bench/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot --per 2000 [--paths PREFIX] [--top 40]
 *
 * Prints the self size per connection by node type and constructor
 * (after − before, / N; compiled code left out: JIT output varies between
 * runs, it is not per-client state). With `--paths PREFIX` (e.g.
 * "closure:" or "object:Array"), the objects new in AFTER whose label starts
 * with PREFIX are grouped by their retainer chain, four levels up, to say
 * whose they are.
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const STRINGS = new Set(["string", "concatenated string", "sliced string"]);

function read(path: string): Snapshot {
  return JSON.parse(readFileSync(path, "utf8")) as Snapshot;
}

function fields(s: Snapshot) {
  const m = s.snapshot.meta;
  const f = (name: string) => m.node_fields.indexOf(name);
  return { nf: m.node_fields.length, type: f("type"), name: f("name"), size: f("self_size"), id: f("id"), edges: f("edge_count"), types: m.node_types[0] };
}

function label(s: Snapshot, i: number): string {
  const f = fields(s);
  const type = f.types[s.nodes[i + f.type]!]!;
  const name = STRINGS.has(type) ? "" : s.strings[s.nodes[i + f.name]!]!.slice(0, 50);
  return `${type}:${name}`;
}

/** Self bytes and counts by label, code excluded. */
function totals(s: Snapshot): Map<string, { count: number; bytes: number }> {
  const f = fields(s);
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += f.nf) {
    if (f.types[s.nodes[i + f.type]!] === "code") continue;
    const k = label(s, i);
    const g = out.get(k) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += s.nodes[i + f.size]!;
    out.set(k, g);
  }
  return out;
}

/** Highest id of a JS object in `s`: objects of a later snapshot of the same process with a higher id are new. */
function maxObjectId(s: Snapshot): number {
  const f = fields(s);
  let max = 0;
  for (let i = 0; i < s.nodes.length; i += f.nf) {
    const type = f.types[s.nodes[i + f.type]!];
    if (type === "object" || type === "closure" || type === "array") max = Math.max(max, s.nodes[i + f.id]!);
  }
  return max;
}

function retainerPaths(s: Snapshot, newerThan: number, prefix: string): Map<string, { count: number; bytes: number }> {
  const f = fields(s);
  const m = s.snapshot.meta;
  const ef = m.edge_fields.length;
  const eType = m.edge_fields.indexOf("type");
  const eName = m.edge_fields.indexOf("name_or_index");
  const eTo = m.edge_fields.indexOf("to_node");
  const edgeTypes = m.edge_types[0];
  const retainer = new Int32Array(s.nodes.length / f.nf).fill(-1);
  const via: string[] = [];
  for (let n = 0, e = 0; n < s.nodes.length; n += f.nf) {
    for (let k = 0; k < s.nodes[n + f.edges]!; k++, e += ef) {
      const to = s.edges[e + eTo]! / f.nf;
      const type = edgeTypes[s.edges[e + eType]!]!;
      if (type === "weak" || retainer[to] !== -1) continue;
      retainer[to] = n;
      // element and internal edges are named by an index: grouped as one
      const name = type === "element" || type === "hidden" ? "" : String(s.strings[s.edges[e + eName]!]);
      via[to] = name === "" || /^\d+$/.test(name) ? `[${type}]` : name;
    }
  }
  const out = new Map<string, { count: number; bytes: number }>();
  for (let n = 0; n < s.nodes.length; n += f.nf) {
    if (s.nodes[n + f.id]! <= newerThan || f.types[s.nodes[n + f.type]!] === "code") continue;
    const own = label(s, n);
    if (!own.startsWith(prefix)) continue;
    let path = own;
    for (let at = n / f.nf, depth = 0; depth < 4 && retainer[at]! >= 0; depth++) {
      path += ` <-${via[at]}- ${label(s, retainer[at]!)}`;
      at = retainer[at]! / f.nf;
    }
    const g = out.get(path) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += s.nodes[n + f.size]!;
    out.set(path, g);
  }
  return out;
}

function main(): void {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const per = Number(opt("--per") ?? 1);
  const top = Number(opt("--top") ?? 40);
  const prefix = opt("--paths");
  const [beforePath, afterPath] = args;
  if (!beforePath || !afterPath || !(per > 0)) {
    console.error("usage: node dist/bench/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot --per N [--paths PREFIX] [--top 40]");
    process.exit(2);
  }
  const before = read(beforePath);
  const after = read(afterPath);
  const a = totals(before);
  const b = totals(after);
  const rows: [string, number, number][] = [];
  let total = 0;
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k) ?? { count: 0, bytes: 0 };
    const y = b.get(k) ?? { count: 0, bytes: 0 };
    total += y.bytes - x.bytes;
    rows.push([k, (y.count - x.count) / per, (y.bytes - x.bytes) / per]);
  }
  rows.sort((p, q) => Math.abs(q[2]) - Math.abs(p[2]));
  console.log(`bytes per connection (self sizes, code excluded): ${(total / per).toFixed(0)}`);
  console.log("   bytes   count  type:constructor");
  for (const [k, count, bytes] of rows.slice(0, top)) console.log(`${bytes.toFixed(1).padStart(8)} ${count.toFixed(2).padStart(7)}  ${k}`);
  if (prefix === undefined) return;
  console.log(`\nnew objects labelled ${prefix}*, by retainer chain (bytes and count per connection):`);
  const paths = [...retainerPaths(after, maxObjectId(before), prefix)].sort((p, q) => q[1].bytes - p[1].bytes);
  for (const [path, g] of paths.slice(0, top)) console.log(`${(g.bytes / per).toFixed(1).padStart(8)} ${(g.count / per).toFixed(2).padStart(7)}  ${path}`);
}

main();
