/** Logs: the broker's log as it is written, filtered by level (its own stream: ?logs=LEVEL). */
import { stream } from "../api.js";
import { h } from "../dom.js";
import type { Page } from "../live.js";

const LEVEL_NAMES: Record<number, string> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };
const MAX_LINES = 1000;
const STANDARD = new Set(["level", "time", "msg", "pid", "hostname"]);

export const logsPage: Page = {
  id: "logs",
  title: "Logs",
  mount(root) {
    const level = h("select", { id: "log-level" }, ...["trace", "debug", "info", "warn", "error"].map((l) => h("option", { value: l }, l)));
    level.value = "info";
    const pause = h("input", { type: "checkbox", id: "log-pause" });
    const search = h("input", { type: "search", id: "log-search", placeholder: "filter text" });
    const lines = h("div", { class: "log-lines", id: "log-lines" });
    root.append(
      h("h2", null, "Logs"),
      h("div", { class: "toolbar" }, h("label", null, "level ", level), search, h("label", null, pause, " pause"), h("button", { type: "button", on: { click: () => lines.replaceChildren() } }, "Clear")),
      lines,
    );
    const add = (rec: Record<string, unknown>) => {
      if (pause.checked) return;
      const extra = Object.fromEntries(Object.entries(rec).filter(([k]) => !STANDARD.has(k)));
      const name = LEVEL_NAMES[rec.level as number] ?? String(rec.level);
      const text = `${typeof rec.msg === "string" ? rec.msg : ""}${Object.keys(extra).length ? ` ${JSON.stringify(extra)}` : ""}`;
      const line = h(
        "div",
        { class: `log-line lvl-${name}` },
        h("span", { class: "time" }, new Date(rec.time as number).toLocaleTimeString()),
        h("span", { class: "lvl" }, name),
        h("span", { class: "msg" }, text),
      );
      const q = search.value.trim().toLowerCase();
      if (q && !text.toLowerCase().includes(q)) line.hidden = true;
      const stick = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 20;
      lines.append(line);
      while (lines.childElementCount > MAX_LINES) lines.firstElementChild!.remove();
      if (stick) lines.scrollTop = lines.scrollHeight;
    };
    let handle = stream(`/dashboard/api/live?logs=${level.value}`, (ev, data) => ev === "log" && add(data as Record<string, unknown>));
    level.addEventListener("change", () => {
      handle.close();
      lines.replaceChildren();
      handle = stream(`/dashboard/api/live?logs=${level.value}`, (ev, data) => ev === "log" && add(data as Record<string, unknown>));
    });
    search.addEventListener("input", () => {
      const q = search.value.trim().toLowerCase();
      for (const l of lines.children) (l as HTMLElement).hidden = !!q && !(l.textContent ?? "").toLowerCase().includes(q);
    });
    return () => handle.close();
  },
};
