/**
 * Building DOM without HTML strings. Everything shown comes from the broker,
 * and much of it from clients (ids, usernames, topics, payloads, log lines):
 * children given as strings become text nodes, attributes are set one by one,
 * and nothing here ever assigns innerHTML.
 */
export type Child = Node | string | number | null | undefined | false;

export interface Attrs {
  class?: string;
  id?: string;
  title?: string;
  type?: string;
  value?: string;
  placeholder?: string;
  name?: string;
  for?: string;
  href?: string;
  disabled?: boolean;
  checked?: boolean;
  autocomplete?: string;
  data?: Record<string, string>;
  on?: Partial<{ [K in keyof HTMLElementEventMap]: (ev: HTMLElementEventMap[K]) => void }>;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k === "class") el.className = v as string;
      else if (k === "data") for (const [dk, dv] of Object.entries(v as Record<string, string>)) el.dataset[dk] = dv;
      else if (k === "on") for (const [ev, fn] of Object.entries(v as Record<string, EventListener>)) el.addEventListener(ev, fn);
      else if (k === "disabled" || k === "checked") (el as unknown as Record<string, boolean>)[k] = v as boolean;
      else if (k === "value") (el as unknown as { value: string }).value = v as string;
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Replace an element's content. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

export function table(headers: string[], rows: Child[][], opts: { onRow?: (i: number) => void; rowClass?: (i: number) => string } = {}): HTMLTableElement {
  const body = h("tbody");
  rows.forEach((cells, i) => {
    const tr = h("tr", { class: opts.rowClass?.(i) ?? "" }, ...cells.map((c) => h("td", null, c)));
    if (opts.onRow) {
      tr.classList.add("clickable");
      tr.addEventListener("click", () => opts.onRow!(i));
    }
    body.append(tr);
  });
  return h("table", null, h("thead", null, h("tr", null, ...headers.map((t) => h("th", null, t)))), body);
}

export function fmtNumber(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return n.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return "–";
  if (s < 1e-3) return `${(s * 1e6).toFixed(1)} µs`;
  if (s < 1) return `${(s * 1e3).toFixed(2)} ms`;
  return `${s.toFixed(2)} s`;
}

/** A short-lived message at the top of the page. */
export function toast(text: string, kind: "ok" | "error" = "ok"): void {
  const box = document.getElementById("toasts");
  if (!box) return;
  const t = h("div", { class: `toast ${kind}` }, text);
  box.append(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}

/** A button that asks for a second click before it acts (no confirm() dialogs). */
export function confirmButton(label: string, confirmLabel: string, action: () => Promise<void> | void, cls = ""): HTMLButtonElement {
  let armed = false;
  const b = h("button", { class: cls, type: "button" }, label);
  b.addEventListener("click", (ev) => {
    ev.stopPropagation();
    if (!armed) {
      armed = true;
      b.textContent = confirmLabel;
      b.classList.add("armed");
      setTimeout(() => {
        armed = false;
        b.textContent = label;
        b.classList.remove("armed");
      }, 4000);
      return;
    }
    armed = false;
    b.disabled = true;
    void Promise.resolve(action()).finally(() => {
      b.disabled = false;
      b.textContent = label;
      b.classList.remove("armed");
    });
  });
  return b;
}
