/** A payload shown as text, pretty JSON or a hex dump — always as text nodes. */
import { h } from "../dom.js";

export function hexDump(bytes: Uint8Array, max = 4096): string {
  const lines: string[] = [];
  for (let off = 0; off < Math.min(bytes.length, max); off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, bytes.length));
    const hex = [...row].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${off.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join("\n");
}

export function payloadView(bytes: Uint8Array): HTMLElement {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  let pretty: string | null = null;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    pretty = null;
  }
  const pre = h("pre", { class: "payload" });
  const modes: Record<string, () => string> = {
    text: () => text,
    json: () => pretty ?? "(not JSON)",
    hex: () => hexDump(bytes),
  };
  const buttons = Object.keys(modes).map((m) => h("button", { type: "button", class: `mode-${m}`, on: { click: () => pick(m) } }, m.toUpperCase()));
  const pick = (m: string) => {
    pre.textContent = modes[m]!();
    buttons.forEach((b) => b.classList.toggle("active", b.classList.contains(`mode-${m}`)));
  };
  pick(pretty !== null ? "json" : "text");
  return h("div", { class: "payload-view" }, h("div", { class: "tabs" }, ...buttons), pre);
}
