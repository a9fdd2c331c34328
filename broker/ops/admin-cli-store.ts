/** `wasmq admin store`: GET /store (admin-store.ts) from a shell. */
import type { StoreView } from "./admin-store.js";

/** The figures as "name  value" lines (or the API's JSON). */
export function storeText(body: StoreView, json: boolean): string {
  if (json) return JSON.stringify(body, null, 2);
  const rows: [string, string][] = [
    ["store", `${body.mode ?? "-"}${body.durability ? ` (durability ${body.durability})` : ""}`],
    ["retained messages", String(body.retained)],
    ["persistent sessions", String(body.persistentSessions)],
    ["subscriptions", String(body.subscriptions)],
    ["queued messages", body.queued === null ? "-" : String(body.queued)],
  ];
  const h = body.writeHold;
  if (h) {
    rows.push([
      "write hold",
      h.holdMs === 0 ? "off (writeHoldMs 0: every delivery written before it is sent)" : h.mode === "adaptive" ? `adaptive, at most ${h.holdMs} ms` : `${h.holdMs} ms (fixed)`,
    ]);
    if (h.holdMs > 0 || h.held > 0) {
      const meanMs = h.written > 0 ? ` (held ${((h.writtenWaitSeconds * 1000) / h.written).toFixed(1)} ms on average before the write)` : "";
      rows.push(
        ["  held deliveries", `${h.held} (${h.current} now)`],
        ["  dropped unwritten", `${h.droppedUnwritten}${h.held > 0 ? ` (${((100 * h.droppedUnwritten) / h.held).toFixed(1)} %)` : ""}`],
        ["  written", `${h.written}${meanMs}`],
      );
      if (h.mode === "adaptive" && h.holdMs > 0) {
        rows.push(
          ["  written first", `${h.writtenFirst} (not held: their subscribers usually acknowledge later than ${h.holdMs} ms)`],
          ["  sessions", `${h.sessionsHolding} held, ${h.sessionsWritingFirst} written first`],
        );
      }
    }
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
