/** Overview: the broker's figures over the last 15 minutes, one uPlot chart per concern. */
import uPlot from "uplot";
import { fmtNumber, h } from "../dom.js";
import type { Page, Sample } from "../live.js";

interface ChartSpec {
  title: string;
  series: { label: string; pick: (s: Sample) => number | null; color: string }[];
  unit?: string;
}

const CHARTS: ChartSpec[] = [
  {
    title: "Messages per second",
    series: [
      { label: "in", pick: (s) => s.msgsIn, color: "#2f7ed8" },
      { label: "out", pick: (s) => s.msgsOut, color: "#43a047" },
    ],
  },
  {
    title: "Clients and subscriptions",
    series: [
      { label: "clients", pick: (s) => s.clients, color: "#2f7ed8" },
      { label: "subscriptions", pick: (s) => s.subscriptions, color: "#8e24aa" },
    ],
  },
  {
    title: "Stored messages",
    series: [
      { label: "retained", pick: (s) => s.retained, color: "#f9a825" },
      { label: "queued", pick: (s) => s.queued, color: "#6d4c41" },
    ],
  },
  {
    // LMDB's write hold (broker/OPERATIONS.md "Deliveries acknowledged before they are written"); empty for other stores.
    title: "Held QoS 1 deliveries per second",
    series: [
      { label: "held", pick: (s) => s.held, color: "#3949ab" },
      { label: "dropped unwritten", pick: (s) => s.heldDropped, color: "#43a047" },
      { label: "written", pick: (s) => s.heldWritten, color: "#e53935" },
      { label: "written first (adaptive)", pick: (s) => s.heldWrittenFirst, color: "#8e24aa" },
    ],
  },
  {
    title: "Turned away per second",
    series: [
      { label: "dropped", pick: (s) => s.dropped, color: "#fb8c00" },
      { label: "denied", pick: (s) => s.denied, color: "#e53935" },
      { label: "refused", pick: (s) => s.refused, color: "#5e35b1" },
    ],
  },
  {
    title: "Memory (MB)",
    series: [
      { label: "rss", pick: (s) => s.rssMB, color: "#00897b" },
      { label: "heap used", pick: (s) => s.heapMB, color: "#7cb342" },
    ],
  },
  {
    title: "Event-loop delay (ms)",
    series: [
      { label: "p99", pick: (s) => s.loopP99Ms, color: "#d81b60" },
      { label: "mean", pick: (s) => s.loopMeanMs, color: "#546e7a" },
    ],
  },
];

const CARDS: { label: string; pick: (s: Sample) => number | null; digits?: number }[] = [
  { label: "msgs in/s", pick: (s) => s.msgsIn, digits: 1 },
  { label: "msgs out/s", pick: (s) => s.msgsOut, digits: 1 },
  { label: "clients", pick: (s) => s.clients },
  { label: "subscriptions", pick: (s) => s.subscriptions },
  { label: "retained", pick: (s) => s.retained },
  { label: "queued", pick: (s) => s.queued },
  { label: "rss MB", pick: (s) => s.rssMB, digits: 1 },
  { label: "loop p99 ms", pick: (s) => s.loopP99Ms, digits: 2 },
];

function data(samples: Sample[], spec: ChartSpec): uPlot.AlignedData {
  return [samples.map((s) => s.t / 1000), ...spec.series.map((x) => samples.map((s) => x.pick(s)))];
}

export const overviewPage: Page = {
  id: "overview",
  title: "Overview",
  mount(root, { live }) {
    const cards = CARDS.map((c) => ({ spec: c, value: h("div", { class: "value" }, "–") }));
    root.append(
      h("h2", null, "Overview"),
      h("div", { class: "cards", id: "cards" }, ...cards.map((c) => h("div", { class: "card" }, c.value, h("div", { class: "label" }, c.spec.label)))),
    );
    const grid = h("div", { class: "charts" });
    root.append(grid);
    const plots: { plot: uPlot; spec: ChartSpec }[] = [];
    for (const spec of CHARTS) {
      const box = h("div", { class: "chart" }, h("h3", null, spec.title));
      grid.append(box);
      const width = Math.max(280, box.clientWidth - 16);
      const plot = new uPlot(
        {
          width,
          height: 180,
          series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true, points: { show: false } }))],
          axes: [{}, { size: 50 }],
          legend: { live: true },
          cursor: { drag: { x: false, y: false } },
        },
        data(live.samples, spec),
        box,
      );
      plots.push({ plot, spec });
    }
    const update = () => {
      const last = live.samples.at(-1);
      if (last) for (const c of cards) c.value.textContent = fmtNumber(c.spec.pick(last), c.spec.digits ?? 0);
      for (const { plot, spec } of plots) plot.setData(data(live.samples, spec));
    };
    update();
    const off = [live.on("sample", update), live.on("history", update)];
    const resize = () => {
      for (const { plot } of plots) plot.setSize({ width: Math.max(280, (plot.root.parentElement?.clientWidth ?? 300) - 16), height: 180 });
    };
    window.addEventListener("resize", resize);
    return () => {
      off.forEach((f) => f());
      window.removeEventListener("resize", resize);
      for (const { plot } of plots) plot.destroy();
    };
  },
};
