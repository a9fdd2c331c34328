/**
 * What `npm run bench:hooks` measures per case, and the per-hook goals it
 * judges the results against (issue #17: Wasm vs native per hook kind, fuel's
 * share of hook time, fuel per message). bench/hooks.ts measures; this module
 * names the shapes and the verdicts.
 */
import type { HookName } from "../host/index.js";
import type { FuelAbResult } from "./hook-fuel-ab.js";

export type MessageHook = Exclude<HookName, "tick">;
export const VARIANTS = ["native", "wasm", "wasm-nofuel"] as const;
/** With --baseline DIR: DIR's host and .wasm, metered and not (hooks-baseline.ts). */
export const BASE_VARIANTS = ["wasm-base", "wasm-base-nofuel"] as const;
export type Variant = (typeof VARIANTS)[number] | (typeof BASE_VARIANTS)[number];

export interface Case {
  plugin: string;
  hook: MessageHook;
  /** Payload bytes, or null for hooks that do not see the payload. */
  size: number | null;
}

export interface CaseResult extends Case {
  /** Median ns per call over the rounds. */
  ns: Partial<Record<Variant, number>> & Record<(typeof VARIANTS)[number], number>;
  /** wasm − wasm-nofuel, ns per call: the fuel A/B's median (hook-fuel-ab.ts). */
  fuelNs: number;
  /** The fuel A/B: median share of metering in a metered call, with its interquartile range. */
  fuel?: FuelAbResult;
  /** With --baseline: the same for the baseline build (wasm-base − wasm-base-nofuel), and the fuel it charged. */
  baseFuelNs?: number;
  baseFuel?: FuelAbResult;
  baseFuelUsed?: number;
  wasmOverNative: number;
  verdict: Partial<Record<Variant, string>>;
  /** Fuel one metered call used (the default budget per call is DEFAULT_PLUGIN_LIMITS.fuel). */
  fuelUsed: number;
  batch: number;
}

export function fmtNs(v: number): string {
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} µs` : `${v.toFixed(0)}`;
}

export function sizeLabel(size: number | null): string {
  if (size === null) return "-";
  return size >= 1024 ? `${size / 1024}KB` : `${size}B`;
}

/** Fuel metering's share of a metered call: the A/B's median when measured, else fuel ns / wasm ns. */
export function fuelShare(r: CaseResult): number {
  return r.fuel ? r.fuel.share : r.fuelNs / r.ns.wasm;
}

export interface Check {
  goal: string;
  status: "PASS" | "MISS" | "n/a";
  measured: string;
}

/** Native cost below which a payload-independent hook counts as trivial (a few hundred instructions). */
const TRIVIAL_NS = 2000;

/**
 * The per-hook targets. A hook is "payload-heavy" when its native cost grows
 * with the payload (largest size ≥ 3× smallest: hooks that read the bytes grow
 * 50–100× from 64 B to 16 KB, noise is well under 3×). A
 * payload-independent hook is "trivial" when it costs under TRIVIAL_NS natively;
 * above that it is compute-heavy (auth's PBKDF2), reported without a target.
 * Speed = 1 / time, so "wasm ≥ 0.95× native" means wasm ns ≤ native ns / 0.95.
 */
export function judge(results: CaseResult[], sizes: number[]): Check[] {
  const checks: Check[] = [];
  const small = Math.min(...sizes);
  const large = Math.max(...sizes);
  const key = (r: CaseResult) => `${r.plugin} ${r.hook}`;
  if (large === small) {
    checks.push({ goal: "wasm vs native per hook kind", status: "n/a", measured: "needs two payload sizes to tell trivial from payload-heavy hooks (--sizes)" });
  } else {
    const groups = new Map<string, CaseResult[]>();
    for (const r of results) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
    const heavy = new Set<string>();
    for (const [k, rs] of groups) {
      const a = rs.find((r) => r.size === small);
      const b = rs.find((r) => r.size === large);
      if (a && b && b.ns.native >= 3 * a.ns.native) heavy.add(k);
    }
    const independent = results.filter((r) => !heavy.has(key(r)) && (r.size === null || r.size === small));
    const trivial = independent.filter((r) => r.ns.native < TRIVIAL_NS);
    const compute = independent.filter((r) => r.ns.native >= TRIVIAL_NS);
    if (trivial.length) {
      const speed = (r: CaseResult) => 1 / r.wasmOverNative;
      const worst = trivial.reduce((x, y) => (speed(y) < speed(x) ? y : x));
      const misses = trivial.filter((r) => speed(r) < 0.95);
      checks.push({
        goal: `wasm ≥ 0.95× native speed for trivial hooks (${trivial.length}: payload-independent, < ${TRIVIAL_NS} ns native)`,
        status: misses.length ? "MISS" : "PASS",
        measured:
          `worst ${key(worst)}: ${speed(worst).toFixed(2)}× (native ${fmtNs(worst.ns.native)} ns, wasm ${fmtNs(worst.ns.wasm)} ns)` +
          (misses.length ? `; below 0.95×: ${misses.map((r) => `${key(r)} ${speed(r).toFixed(2)}×`).join(", ")}` : ""),
      });
    }
    if (compute.length) {
      checks.push({
        goal: "compute-heavy, payload-independent hooks (no target)",
        status: "n/a",
        measured: compute.map((r) => `${key(r)} wasm/native ${r.wasmOverNative.toFixed(2)}`).join(", "),
      });
    }
    const heavyAtSize = results.filter((r) => heavy.has(key(r)) && r.size !== null && r.size >= 1024);
    if (heavyAtSize.length) {
      const slower = heavyAtSize.filter((r) => r.wasmOverNative >= 1);
      checks.push({
        goal: `Wasm faster than native for payload-heavy hooks at ≥ 1 KB (${[...heavy].join(", ")})`,
        status: slower.length ? "MISS" : "PASS",
        measured: heavyAtSize.map((r) => `${key(r)} ${sizeLabel(r.size)} wasm/native ${r.wasmOverNative.toFixed(2)}`).join(", "),
      });
    } else {
      checks.push({ goal: "Wasm faster than native for payload-heavy hooks at ≥ 1 KB", status: "n/a", measured: "no measured hook's cost grows with the payload at ≥ 1 KB" });
    }
  }

  const shares = results.map((r) => ({ r, share: fuelShare(r) }));
  if (shares.length) {
    const worst = shares.reduce((x, y) => (y.share > x.share ? y : x));
    const over = shares.filter((x) => x.share > 0.1);
    checks.push({
      goal: "fuel metering ≤ 10% of hook time",
      status: over.length ? "MISS" : "PASS",
      measured:
        `worst ${key(worst.r)} ${sizeLabel(worst.r.size)} ${(worst.share * 100).toFixed(1)}%` +
        (over.length ? `; over 10%: ${over.map((x) => `${key(x.r)} ${sizeLabel(x.r.size)} ${(x.share * 100).toFixed(0)}%`).join(", ")}` : ""),
    });
  }
  // Per plugin, the hooks one 64 B message passes through: publish once, deliver once per subscriber (1 here).
  const perPlugin = [...new Set(results.map((r) => r.plugin))].map((plugin) => {
    const path = results.filter((r) => r.plugin === plugin && (r.hook === "publish" || r.hook === "deliver") && r.size === small);
    return { plugin, fuelNs: path.reduce((n, r) => n + r.fuelNs, 0), hooks: path.map((r) => r.hook) };
  });
  const onPath = perPlugin.filter((p) => p.hooks.length > 0);
  if (onPath.length) {
    const over = onPath.filter((p) => p.fuelNs > 150);
    checks.push({
      goal: `fuel ≤ 150 ns per plugin per ${sizeLabel(small)} message (publish + deliver)`,
      status: over.length ? "MISS" : "PASS",
      measured: onPath.map((p) => `${p.plugin} ${p.fuelNs.toFixed(0)} ns`).join(", "),
    });
  }
  return checks;
}
