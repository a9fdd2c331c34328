/**
 * A self-contained SVG chart of a bench run: one row group per scenario, one bar
 * per target; left panel delivered msg/s, right panel p99 latency. Both axes are
 * logarithmic because scenarios differ by orders of magnitude (fan-out vs 16 KB).
 */
import type { MachineInfo } from "./machine.js";
import type { Aggregate } from "./report.js";
import { TARGETS, type TargetName } from "./scenarios.js";

const COLORS: Record<TargetName, string> = {
  aedes: "#7f7f7f",
  native: "#1f77b4",
  wasm: "#d62728",
  "wasm-nofuel": "#ff9896",
  mosquitto: "#2ca02c",
  "wasm-no-v5": "#9467bd",
  "wasm-base": "#8c564b",
  "native-base": "#aec7e8",
  echo: "#bcbd22",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function compact(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  if (v >= 10) return v.toFixed(0);
  if (v >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

interface Panel {
  title: string;
  x: number;
  width: number;
  value: (r: Aggregate) => number | null;
  unit: string;
}

function logDomain(values: number[]): [number, number] {
  const v = values.filter((x) => Number.isFinite(x) && x > 0);
  if (!v.length) return [1, 10];
  return [10 ** Math.floor(Math.log10(Math.min(...v))), 10 ** Math.ceil(Math.log10(Math.max(...v) * 1.05))];
}

export function renderChart(rows: Aggregate[], machine: MachineInfo): string {
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const targets = TARGETS.filter((t) => rows.some((r) => r.target === t));
  const barH = 9;
  const groupGap = 10;
  const top = 84;
  const labelW = 170;
  const panels: Panel[] = [
    { title: "delivered msg/s (log scale, higher is better)", x: labelW + 10, width: 430, value: (r) => r.msgsPerSec, unit: "" },
    { title: "p99 latency ms (log scale, lower is better)", x: labelW + 10 + 430 + 50, width: 330, value: (r) => r.p99Ms, unit: " ms" },
  ];
  const groupH = (s: string) => rows.filter((r) => r.scenario === s).length * barH + groupGap;
  const plotH = scenarios.reduce((h, s) => h + groupH(s), 0);
  const width = panels[1]!.x + panels[1]!.width + 40;
  const height = top + plotH + 60;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="10">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="10" y="18" font-size="14" font-weight="bold">wasmq bench — ${esc(machine.date.slice(0, 16).replace("T", " "))} UTC</text>`);
  out.push(`<text x="10" y="34" fill="#555">${esc(`${machine.cpu}, ${machine.cores} cores · Node ${machine.node} · medians of the repetitions`)}</text>`);
  // Legend.
  targets.forEach((t, i) => {
    const x = 10 + i * 110;
    out.push(`<rect x="${x}" y="44" width="10" height="10" fill="${COLORS[t]}"/><text x="${x + 14}" y="53">${t}</text>`);
  });

  for (const p of panels) {
    const [lo, hi] = logDomain(rows.map((r) => p.value(r) ?? NaN));
    const sx = (v: number) => p.x + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * p.width;
    out.push(`<text x="${p.x}" y="${top - 6}" font-weight="bold">${esc(p.title)}</text>`);
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
      const x = sx(d);
      out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#ddd"/>`);
      out.push(`<text x="${x}" y="${top + plotH + 14}" text-anchor="middle" fill="#555">${compact(d)}</text>`);
    }
    let y = top;
    for (const s of scenarios) {
      for (const t of targets) {
        const r = rows.find((x) => x.scenario === s && x.target === t);
        if (!r) continue;
        const v = p.value(r);
        if (v !== null && v > 0) {
          const w = Math.max(1, sx(Math.max(v, lo)) - p.x);
          out.push(`<rect x="${p.x}" y="${y}" width="${w.toFixed(1)}" height="${barH - 1}" fill="${COLORS[t]}"><title>${esc(`${s} ${t}: ${compact(v)}${p.unit}`)}</title></rect>`);
          out.push(`<text x="${(p.x + w + 3).toFixed(1)}" y="${y + barH - 2}" font-size="8" fill="#333">${compact(v)}</text>`);
        } else {
          out.push(`<text x="${p.x + 3}" y="${y + barH - 2}" font-size="8" fill="#a00">failed</text>`);
        }
        y += barH;
      }
      y += groupGap;
    }
  }
  let y = top;
  for (const s of scenarios) {
    const h = groupH(s) - groupGap;
    out.push(`<text x="${labelW}" y="${(y + h / 2 + 3).toFixed(1)}" text-anchor="end">${esc(s)}</text>`);
    out.push(`<line x1="10" y1="${y + h + groupGap / 2}" x2="${width - 10}" y2="${y + h + groupGap / 2}" stroke="#eee"/>`);
    y += h + groupGap;
  }
  out.push(`<text x="10" y="${height - 12}" fill="#555">Absolute numbers on a shared machine drift; compare targets within a scenario (ratios).</text>`);
  out.push("</svg>");
  return out.join("\n");
}
