/** Topics: retained messages by filter (payload as text, JSON or hex; delete), and subscriptions by filter. */
import { del, get } from "../api.js";
import { confirmButton, fill, fmtNumber, h, table, toast } from "../dom.js";
import type { Page } from "../live.js";
import { payloadView } from "./payload.js";

interface Retained {
  topic: string;
  qos: number;
  size: number;
  payload: string;
}

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export const topicsPage: Page = {
  id: "topics",
  title: "Topics",
  mount(root) {
    const filter = h("input", { type: "text", id: "retained-filter", value: "#", placeholder: "topic filter, e.g. sensors/+/temp" });
    const list = h("div", { id: "retained-list" });
    const view = h("div", { id: "retained-view", class: "details" });
    const subFilter = h("input", { type: "search", id: "sub-filter", placeholder: "part of a subscription filter" });
    const subs = h("div", { id: "sub-list" });
    let messages: Retained[] = [];
    let shown: Retained | undefined;
    let loads = 0;

    const show = (m: Retained | undefined) => {
      shown = m;
      if (!m) return fill(view, h("p", { class: "muted" }, "Select a retained message."));
      fill(
        view,
        h("h3", { class: "topic" }, m.topic),
        h("p", { class: "muted" }, `QoS ${m.qos} · ${fmtNumber(m.size)} bytes`),
        payloadView(fromBase64(m.payload)),
        h(
          "div",
          { class: "actions" },
          confirmButton("Delete retained message", "Click again to delete", async () => {
            try {
              await del(`/dashboard/api/retained?topic=${encodeURIComponent(m.topic)}`);
              toast(`Deleted the retained message on ${m.topic}`);
              await load();
            } catch (err) {
              toast((err as Error).message, "error");
            }
          }, "danger delete-retained"),
        ),
      );
    };

    const load = async () => {
      const mine = ++loads;
      try {
        const r = await get<{ messages: Retained[]; truncated: boolean }>(`/dashboard/api/retained?filter=${encodeURIComponent(filter.value || "#")}&limit=500`);
        // An older answer arriving after a newer request is stale.
        if (mine !== loads) return;
        messages = r.messages.sort((a, b) => a.topic.localeCompare(b.topic));
        fill(
          list,
          h("p", { class: "muted" }, `${messages.length}${r.truncated ? "+" : ""} retained`),
          table(
            ["topic", "QoS", "bytes"],
            messages.map((m) => [h("span", { class: "topic" }, m.topic), String(m.qos), fmtNumber(m.size)]),
            { onRow: (i) => show(messages[i]) },
          ),
        );
        // Keep the message on display while it is still there unchanged.
        const same = shown && messages.find((m) => m.topic === shown!.topic && m.payload === shown!.payload);
        if (!same) show(undefined);
      } catch (err) {
        toast((err as Error).message, "error");
      }
    };

    const loadSubs = async () => {
      try {
        const r = await get<{ subscriptions: { clientId: string; topic: string; qos: number }[] }>(`/dashboard/api/subscriptions?filter=${encodeURIComponent(subFilter.value)}`);
        fill(subs, table(["filter", "client", "QoS"], r.subscriptions.map((s) => [s.topic, s.clientId, String(s.qos)])));
      } catch (err) {
        toast((err as Error).message, "error");
      }
    };

    const form = h("form", { class: "toolbar" }, filter, h("button", { type: "submit" }, "Browse"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void load();
    });
    subFilter.addEventListener("input", () => void loadSubs());
    root.append(
      h("h2", null, "Retained messages"),
      form,
      h("div", { class: "split" }, list, view),
      h("h2", null, "Subscriptions of connected clients"),
      h("div", { class: "toolbar" }, subFilter),
      subs,
    );
    void load();
    void loadSubs();
    return () => {};
  },
};
