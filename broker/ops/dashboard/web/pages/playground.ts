/**
 * Playground: run a plugin's .wasm in this page — the broker's own ABI code
 * (host/playground.ts) on the same build, metered by the broker so fuel counts
 * as it does there — over messages written as `npm run harness` reads them.
 */
import type { FailurePolicy } from "../../../../../host/call-outcome.js";
import { get, request } from "../api.js";
import { fill, fmtNumber, h, table, toast } from "../dom.js";
import type { Page } from "../live.js";
import type { PlaygroundResult } from "./playground-engine.js";
import type { PluginInfo } from "./plugins.js";

interface Build {
  plugin: string;
  sha256: string;
  wasm: string;
  config: Record<string, unknown>;
  fuel: number | null;
  onError: string;
}

const EXAMPLE = `# JSON Lines (or a JSON array), as npm run harness reads them
{"hook":"publish","topic":"sensors/1/temp","payload":{"value":21.5},"clientId":"dev-1"}
{"hook":"publish","topic":"sensors/1/temp","payload":{"value":500},"clientId":"dev-1"}
{"hook":"subscribe","topic":"#","clientId":"dev-2","username":"alice"}`;

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export const playgroundPage: Page = {
  id: "playground",
  title: "Playground",
  mount(root) {
    const pick = h("select", { id: "pg-plugin" }, h("option", { value: "" }, "— a plugin of this broker —"));
    const file = h("input", { type: "file", id: "pg-file" });
    file.accept = ".wasm,application/wasm";
    const source = h("p", { class: "mono muted", id: "pg-source" }, "No build loaded.");
    const config = h("textarea", { id: "pg-config", placeholder: "plugin config (JSON)" });
    const fuel = h("input", { type: "number", id: "pg-fuel", value: "100000000" });
    const onError = h("select", { id: "pg-on-error" }, h("option", { value: "fail-closed" }, "fail-closed"), h("option", { value: "fail-open" }, "fail-open"));
    const messages = h("textarea", { id: "pg-messages", value: EXAMPLE });
    const run = h("button", { type: "button", id: "pg-run", disabled: true }, "Run in this browser");
    const status = h("span", { class: "muted", id: "pg-status" });
    const results = h("div", { id: "pg-results" });
    const json = h("pre", { class: "payload", id: "pg-json" });
    json.hidden = true;
    const showJson = h("input", { type: "checkbox", id: "pg-show-json" });
    showJson.addEventListener("change", () => (json.hidden = !showJson.checked));

    let raw: Uint8Array | null = null;
    let name = "plugin";
    const metered = new Map<string, Uint8Array>();

    const loaded = (bytes: Uint8Array, label: string) => {
      raw = bytes;
      metered.clear();
      run.disabled = false;
      source.textContent = label;
    };

    pick.addEventListener("change", async () => {
      if (!pick.value) return;
      try {
        const b = await get<Build>(`/dashboard/api/plugins/${encodeURIComponent(pick.value)}/build`);
        name = b.plugin;
        config.value = JSON.stringify(b.config, null, 2);
        fuel.value = b.fuel === null ? "" : String(b.fuel);
        onError.value = b.onError;
        loaded(fromBase64(b.wasm), `${b.plugin}: sha256 ${b.sha256}`);
      } catch (err) {
        toast((err as Error).message, "error");
      }
    });
    file.addEventListener("change", async () => {
      const f = file.files?.[0];
      if (!f) return;
      name = f.name.replace(/\.wasm$/, "") || "plugin";
      pick.value = "";
      const bytes = new Uint8Array(await f.arrayBuffer());
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      loaded(bytes, `${f.name}: sha256 ${[...digest].map((b) => b.toString(16).padStart(2, "0")).join("")}`);
    });

    /** The broker adds fuel metering (binaryen, host/fuel.ts), so fuel counts here as it does in the broker. */
    const meter = async (bytes: Uint8Array): Promise<Uint8Array> => {
      const key = source.textContent ?? "";
      const cached = metered.get(key);
      if (cached) return cached;
      const res = await request("POST", "/dashboard/api/meter", bytes as BodyInit, "application/wasm");
      if (!res.ok) throw new Error(((await res.json()) as { error?: string }).error ?? `metering failed: ${res.status}`);
      const out = new Uint8Array(await res.arrayBuffer());
      metered.set(key, out);
      return out;
    };

    run.addEventListener("click", async () => {
      if (!raw) return;
      run.disabled = true;
      status.textContent = "Running…";
      try {
        const { BROWSER_CRYPTO, createPlayground, parseMessages } = await import("./playground-engine.js");
        let cfg: Record<string, unknown>;
        try {
          cfg = config.value.trim() ? (JSON.parse(config.value) as Record<string, unknown>) : {};
        } catch (err) {
          throw new Error(`config: not valid JSON: ${(err as Error).message}`);
        }
        const input = parseMessages(messages.value, "messages");
        const budget = fuel.value.trim() === "" ? null : Number(fuel.value);
        if (budget !== null && !(Number.isInteger(budget) && budget > 0 && budget <= 0x7fffffff)) throw new Error("fuel: an integer from 1 to 2147483647, or empty for unmetered");
        // The build is checked as the broker checks it; only its metering is done by the broker.
        const pg = await createPlayground(raw, {
          name,
          config: cfg,
          fuel: budget,
          onError: onError.value as FailurePolicy,
          env: { crypto: BROWSER_CRYPTO, instrument: meter },
        });
        let out: PlaygroundResult[];
        try {
          out = input.map((m, i) => pg.run(m, i));
        } finally {
          pg.close();
        }
        fill(
          results,
          table(
            ["#", "hook", "topic", "verdict", "changed", "published", "logs", "fuel"],
            out.map((r, i) => [
              String(r.index),
              r.hook,
              input[i]?.topic ?? "",
              h("span", { class: `verdict verdict-${r.verdict}` }, `${r.verdict}${r.returnCode !== undefined ? ` (rc ${r.returnCode})` : ""}${r.trap ? ` [trap: ${r.trap}]` : ""}`),
              r.changed ? JSON.stringify(r.changed) : "",
              r.published.map((p) => `${p.topic} ${p.payload}`).join("\n"),
              r.logs.join("\n"),
              r.fuel === null ? "–" : fmtNumber(r.fuel),
            ]),
          ),
        );
        json.textContent = JSON.stringify(out, null, 2);
        status.textContent = `${out.length} messages`;
      } catch (err) {
        status.textContent = "";
        fill(results, h("p", { class: "error", id: "pg-error" }, (err as Error).message));
      } finally {
        run.disabled = false;
      }
    });

    root.append(
      h("h2", null, "Plugin playground"),
      h("p", { class: "muted" }, "The build runs in this page with the broker's own ABI code; verdicts and fuel match `npm run harness` on the same input."),
      h("div", { class: "toolbar" }, pick, h("span", null, "or"), file),
      source,
      h(
        "div",
        { class: "playground" },
        h("div", null, h("h3", null, "Config"), config, h("div", { class: "toolbar" }, h("label", null, "fuel per call ", fuel), h("label", null, "on error ", onError))),
        h("div", null, h("h3", null, "Messages"), messages),
      ),
      h("div", { class: "toolbar" }, run, status, h("label", null, showJson, " show JSON")),
      results,
      json,
    );
    void get<{ plugins: PluginInfo[] }>("/plugins").then(({ plugins }) => {
      for (const p of plugins) if (p.kind === "wasm") pick.append(h("option", { value: p.name }, p.name));
    });
    return () => {};
  },
};
