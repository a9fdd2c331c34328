/**
 * The wasmq dashboard: a login form when the broker wants a token, then one
 * page per view, chosen by the URL's hash (#clients, #plugins, ...).
 */
import "uplot/dist/uPlot.min.css";
import "./app.css";
import { onUnauthorized, request, setToken } from "./api.js";
import { fill, h } from "./dom.js";
import { LiveHub, type Page } from "./live.js";
import { clientsPage } from "./pages/clients.js";
import { extraPages } from "./pages/cluster.js";
import { logsPage } from "./pages/logs.js";
import { mqttPage } from "./pages/mqtt.js";
import { overviewPage } from "./pages/overview.js";
import { playgroundPage } from "./pages/playground.js";
import { pluginsPage } from "./pages/plugins.js";
import { topicsPage } from "./pages/topics.js";

const PAGES: Page[] = [overviewPage, clientsPage, topicsPage, pluginsPage, playgroundPage, mqttPage, logsPage];

const live = new LiveHub();
let unmount: (() => void) | null = null;
let pages: Page[] = PAGES;

function root(): HTMLElement {
  return document.getElementById("app")!;
}

function showLogin(message?: string): void {
  live.stop();
  unmount?.();
  unmount = null;
  const input = h("input", { type: "password", id: "token", name: "token", placeholder: "admin token (metrics.token)", autocomplete: "current-password" });
  const form = h(
    "form",
    { class: "login", id: "login" },
    h("h1", null, "wasmq"),
    h("p", null, "This broker's admin API needs its token."),
    input,
    h("button", { type: "submit" }, "Sign in"),
    message ? h("p", { class: "error", id: "login-error" }, message) : null,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken(input.value);
    void boot();
  });
  fill(root(), form);
  input.focus();
}

function render(): void {
  const id = location.hash.replace(/^#/, "") || "overview";
  const page = pages.find((p) => p.id === id) ?? pages[0]!;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", (a as HTMLElement).dataset.page === page.id);
  unmount?.();
  const main = document.getElementById("main")!;
  main.replaceChildren();
  document.title = `${page.title} · wasmq`;
  unmount = page.mount(main, { live });
}

function shell(health: { uptimeSec: number }): void {
  const status = h("span", { class: "status", id: "live-status" }, "connecting…");
  const nav = h(
    "nav",
    null,
    h("span", { class: "brand" }, "wasmq"),
    ...pages.map((p) => h("a", { href: `#${p.id}`, data: { page: p.id } }, p.title)),
    h("span", { class: "spacer" }),
    status,
    h("button", { type: "button", class: "link", id: "signout", on: { click: () => (setToken(null), showLogin()) } }, "Sign out"),
  );
  fill(root(), nav, h("div", { id: "toasts" }), h("main", { id: "main", data: { uptime: String(health.uptimeSec) } }));
  live.start((up) => {
    status.textContent = up ? "live" : "reconnecting…";
    status.classList.toggle("down", !up);
  });
  render();
}

async function boot(): Promise<void> {
  const res = await request("GET", "/health");
  if (res.status === 401) {
    const hadToken = sessionStorage.getItem("wasmq.token") !== null;
    setToken(null);
    return showLogin(hadToken ? "That token was not accepted." : undefined);
  }
  if (!res.ok) {
    fill(root(), h("p", { class: "error" }, `The broker answered ${res.status}.`));
    return;
  }
  const health = (await res.json()) as { uptimeSec: number };
  pages = [...PAGES, ...(await extraPages())];
  shell(health);
}

onUnauthorized(() => showLogin("The broker no longer accepts this token."));
window.addEventListener("hashchange", render);
void boot();
