/** Clients: who is connected, searchable; details; kick with or without the will. */
import { del, get } from "../api.js";
import { confirmButton, fill, fmtNumber, h, table, toast } from "../dom.js";
import type { Page } from "../live.js";

export interface ClientInfo {
  id: string;
  username: string | null;
  remote: string | null;
  clean: boolean;
  protocol: number;
  connectedAt: string | null;
  subscriptions: { topic: string; qos: number }[];
  sendQueueBytes: number;
  inflightOut: number;
  waitingOut: number;
  storedMessages: number;
}

const PROTOCOLS: Record<number, string> = { 3: "MQTT 3.1", 4: "MQTT 3.1.1", 5: "MQTT 5" };

function since(iso: string | null): string {
  if (!iso) return "–";
  const d = new Date(iso);
  return `${d.toLocaleTimeString()} (${Math.round((Date.now() - d.getTime()) / 1000)} s ago)`;
}

export const clientsPage: Page = {
  id: "clients",
  title: "Clients",
  mount(root, { live }) {
    const search = h("input", { type: "search", id: "client-search", placeholder: "search id, user or address" });
    const count = h("span", { class: "muted", id: "client-count" });
    const list = h("div", { id: "client-list" });
    const details = h("div", { id: "client-details", class: "details" });
    root.append(h("h2", null, "Clients ", count), h("div", { class: "toolbar" }, search), h("div", { class: "split" }, list, details));
    let clients: ClientInfo[] = [];
    let selected: string | null = null;

    const kick = async (id: string, will: boolean) => {
      try {
        await del(`/clients/${encodeURIComponent(id)}${will ? "?will=true" : ""}`);
        toast(`Disconnected ${id}${will ? " (will published)" : ""}`);
      } catch (err) {
        toast((err as Error).message, "error");
      }
      await refresh();
    };

    const showDetails = () => {
      const c = clients.find((x) => x.id === selected);
      if (!c) return fill(details, h("p", { class: "muted" }, selected ? "That client has gone." : "Select a client for details."));
      fill(
        details,
        h("h3", null, c.id),
        h(
          "dl",
          null,
          ...(
            [
              ["user", c.username ?? "–"],
              ["address", c.remote ?? "–"],
              ["protocol", PROTOCOLS[c.protocol] ?? String(c.protocol)],
              ["clean session", c.clean ? "yes" : "no"],
              ["connected", since(c.connectedAt)],
              ["in flight (QoS 1/2 out)", fmtNumber(c.inflightOut)],
              ["waiting behind the window", fmtNumber(c.waitingOut)],
              ["stored for the session", fmtNumber(c.storedMessages)],
              ["socket send queue", `${fmtNumber(c.sendQueueBytes)} B`],
            ] as const
          ).flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
        ),
        h("h4", null, `Subscriptions (${c.subscriptions.length})`),
        c.subscriptions.length ? table(["filter", "QoS"], c.subscriptions.map((s) => [s.topic, String(s.qos)])) : h("p", { class: "muted" }, "none"),
        h(
          "div",
          { class: "actions" },
          confirmButton("Kick", "Click again to kick", () => kick(c.id, false), "danger kick"),
          confirmButton("Kick and publish will", "Click again to kick", () => kick(c.id, true), "danger kick-will"),
        ),
      );
    };

    const draw = () => {
      const q = search.value.trim().toLowerCase();
      const shown = clients.filter((c) => !q || [c.id, c.username ?? "", c.remote ?? ""].some((s) => s.toLowerCase().includes(q)));
      count.textContent = `${shown.length} of ${clients.length}`;
      fill(
        list,
        table(
          ["client id", "user", "address", "protocol", "connected since", "subs", "in flight", "queued"],
          shown.map((c) => [
            h("span", { class: "client-id" }, c.id),
            c.username ?? "–",
            c.remote ?? "–",
            PROTOCOLS[c.protocol] ?? String(c.protocol),
            c.connectedAt ? new Date(c.connectedAt).toLocaleTimeString() : "–",
            String(c.subscriptions.length),
            String(c.inflightOut),
            String(c.waitingOut + c.storedMessages),
          ]),
          {
            onRow: (i) => {
              selected = shown[i]!.id;
              showDetails();
            },
            rowClass: (i) => (shown[i]!.id === selected ? "selected" : ""),
          },
        ),
      );
      showDetails();
    };

    let pending: Promise<void> | null = null;
    const refresh = async () => {
      pending ??= (async () => {
        try {
          clients = (await get<{ clients: ClientInfo[] }>("/clients")).clients;
          clients.sort((a, b) => a.id.localeCompare(b.id));
          draw();
        } catch (err) {
          toast((err as Error).message, "error");
        } finally {
          pending = null;
        }
      })();
      return pending;
    };
    search.addEventListener("input", draw);
    void refresh();
    const off = live.on("client", () => void refresh());
    const timer = setInterval(() => void refresh(), 5000);
    return () => {
      off();
      clearInterval(timer);
    };
  },
};
