/**
 * Plugins: the chain in order with its state and numbers; enable, disable,
 * reload; upload a new build — checked first (dry run: its sha256, hooks and
 * init with the plugin's config), applied only on a second click.
 */
import { get, post, request } from "../api.js";
import { fill, fmtNumber, fmtSeconds, h, table, toast } from "../dom.js";
import type { Page } from "../live.js";

export interface PluginInfo {
  name: string;
  kind: "wasm" | "native";
  source: string;
  sha256: string | null;
  enabled: boolean;
  ready: boolean;
  hooks: string[];
  /** Hooks the running instance declared idle (never called, so 0 calls). */
  idleHooks?: string[];
  onError: string;
  breaker: string;
  lastError: string | null;
  stats: {
    calls: Record<string, number>;
    verdicts: Record<string, number>;
    traps: Record<string, number>;
    failures: number;
    reloads: number;
    reloadFailures: number;
    restarts: number;
    fuelUsedLast: number;
  };
}

type Timing = Record<string, Record<string, { samples: number; p50: number | null; p90: number | null; p99: number | null }>>;

const totalCalls = (p: PluginInfo) => Object.values(p.stats.calls).reduce((a, b) => a + b, 0);

function uploadPanel(p: PluginInfo, done: () => void): HTMLElement {
  const file = h("input", { type: "file", class: "upload-file", data: { plugin: p.name } });
  file.accept = ".wasm,application/wasm";
  const out = h("div", { class: "upload-result" });
  let bytes: ArrayBuffer | null = null;
  const apply = h("button", { type: "button", class: "apply", disabled: true }, "Apply this build");
  file.addEventListener("change", async () => {
    apply.disabled = true;
    const f = file.files?.[0];
    if (!f) return;
    bytes = await f.arrayBuffer();
    fill(out, "Checking…");
    const res = await request("POST", `/plugins/${encodeURIComponent(p.name)}/upload?dryRun=true`, bytes, "application/wasm");
    const body = (await res.json()) as { sha256?: string; size?: number; hooks?: string[]; error?: string };
    if (!res.ok) {
      fill(out, h("p", { class: "error refused" }, `Refused: ${body.error ?? res.status}`), body.sha256 ? h("p", { class: "mono" }, `sha256 ${body.sha256}`) : null);
      return;
    }
    fill(
      out,
      h("p", null, "Checked (not applied yet): "),
      h("p", { class: "mono sha" }, `sha256 ${body.sha256}`),
      h("p", null, `${fmtNumber(body.size)} bytes, hooks: ${(body.hooks ?? []).join(", ")}`),
    );
    apply.disabled = false;
  });
  apply.addEventListener("click", async () => {
    if (!bytes) return;
    apply.disabled = true;
    const res = await request("POST", `/plugins/${encodeURIComponent(p.name)}/upload`, bytes, "application/wasm");
    const body = (await res.json()) as { sha256?: string; error?: string; warning?: string };
    if (!res.ok) fill(out, h("p", { class: "error refused" }, `Refused: ${body.error ?? res.status}`));
    else {
      fill(out, h("p", { class: "ok" }, `Now running ${body.sha256}`), body.warning ? h("p", { class: "error" }, body.warning) : null);
      toast(`${p.name}: new build applied`);
      done();
    }
  });
  return h("div", { class: "upload" }, h("label", null, "Upload a new build: ", file), apply, out);
}

export const pluginsPage: Page = {
  id: "plugins",
  title: "Plugins",
  mount(root) {
    const list = h("div", { id: "plugin-list" });
    root.append(h("h2", null, "Plugin chain"), h("p", { class: "muted" }, "In the order the broker calls them. Call times are sampled."), list);
    let last: { at: number; calls: Map<string, number> } | null = null;
    let rates = new Map<string, number>();
    let openUpload: string | null = null;

    const act = async (name: string, action: "enable" | "disable" | "reload") => {
      try {
        await post<{ ok?: boolean }>(`/plugins/${encodeURIComponent(name)}/${action}`);
        toast(`${name}: ${action}${action === "reload" ? "ed" : "d"}`);
      } catch (err) {
        // A refused reload (422) or disable (409) carries the broker's reason.
        toast(`${name}: ${(err as Error).message}`, "error");
      }
      await refresh();
    };

    const draw = (plugins: PluginInfo[], timing: Timing) => {
      fill(
        list,
        ...plugins.map((p, i) => {
          const traps = Object.entries(p.stats.traps).filter(([, n]) => n > 0);
          const t = timing[p.name] ?? {};
          const state = !p.enabled ? "disabled" : !p.ready ? "not ready" : p.breaker !== "closed" ? `breaker ${p.breaker}` : "ready";
          return h(
            "section",
            { class: `plugin ${p.enabled ? "" : "off"}`, data: { plugin: p.name } },
            h(
              "header",
              null,
              h("span", { class: "order" }, `${i + 1}.`),
              h("h3", null, p.name),
              h("span", { class: `badge ${state.replace(/\s.*/, "")}`, data: { state } }, state),
              h("span", { class: "muted" }, `${p.kind} · ${hookList(p)} · ${p.onError}`),
              h("span", { class: "spacer" }),
              h("button", { type: "button", class: p.enabled ? "disable" : "enable", on: { click: () => void act(p.name, p.enabled ? "disable" : "enable") } }, p.enabled ? "Disable" : "Enable"),
              h("button", { type: "button", class: "reload", on: { click: () => void act(p.name, "reload") } }, "Reload"),
              p.kind === "wasm"
                ? h("button", { type: "button", class: "upload-toggle", on: { click: () => ((openUpload = openUpload === p.name ? null : p.name), void refresh()) } }, "Upload…")
                : null,
            ),
            h(
              "div",
              { class: "plugin-stats" },
              h("span", null, `calls/s ${fmtNumber(rates.get(p.name) ?? null, 1)}`),
              h("span", null, `calls ${fmtNumber(totalCalls(p))}`),
              h("span", null, `drop ${fmtNumber(p.stats.verdicts.drop)} · deny ${fmtNumber(p.stats.verdicts.deny)} · modified ${fmtNumber(p.stats.verdicts.modified)}`),
              h("span", null, `fuel last call ${p.stats.fuelUsedLast < 0 ? "–" : fmtNumber(p.stats.fuelUsedLast)}`),
              h("span", null, `traps ${traps.length ? traps.map(([k, n]) => `${k} ${n}`).join(", ") : "0"}`),
              h("span", null, `failures ${fmtNumber(p.stats.failures)} · restarts ${fmtNumber(p.stats.restarts)}`),
              h("span", null, `reloads ${fmtNumber(p.stats.reloads)} ok / ${fmtNumber(p.stats.reloadFailures)} refused`),
            ),
            Object.keys(t).length
              ? table(
                  ["hook", "sampled calls", "p50", "p90", "p99"],
                  Object.entries(t).map(([hook, x]) => [hook, fmtNumber(x.samples), fmtSeconds(x.p50), fmtSeconds(x.p90), fmtSeconds(x.p99)]),
                )
              : null,
            p.sha256 ? h("p", { class: "mono muted" }, `sha256 ${p.sha256}`) : null,
            p.lastError ? h("p", { class: "error" }, p.lastError) : null,
            openUpload === p.name ? uploadPanel(p, () => ((openUpload = null), void refresh())) : null,
          );
        }),
      );
    };

    let busy = false;
    const refresh = async () => {
      if (busy) return;
      busy = true;
      try {
        const [{ plugins }, { plugins: timing }] = await Promise.all([get<{ plugins: PluginInfo[] }>("/plugins"), get<{ plugins: Timing }>("/dashboard/api/plugin-timing")]);
        const now = performance.now();
        const calls = new Map(plugins.map((p) => [p.name, totalCalls(p)]));
        if (last) {
          const dt = (now - last.at) / 1000;
          rates = new Map(plugins.map((p) => [p.name, Math.max(0, ((calls.get(p.name) ?? 0) - (last!.calls.get(p.name) ?? 0)) / dt)]));
        }
        last = { at: now, calls };
        // Redrawing would reset a file picked in an open upload panel: keep the DOM while one is open.
        if (!openUpload || !list.querySelector(".upload")) draw(plugins, timing);
      } catch (err) {
        toast((err as Error).message, "error");
      } finally {
        busy = false;
      }
    };
    void refresh();
    const timer = setInterval(() => void refresh(), 2000);
    return () => clearInterval(timer);
  },
};

/** The plugin's hooks, idle ones (abi-idle.ts: not called for this config) marked as such. */
function hookList(p: PluginInfo): string {
  return p.hooks.map((hook) => (p.idleHooks?.includes(hook) ? `${hook} (idle)` : hook)).join(", ");
}
