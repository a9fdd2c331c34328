/**
 * Nodes and bridges: pages that appear when the broker answers /cluster or
 * /bridges (the cluster and bridge work adds those APIs). Until their shapes
 * settle they are shown as tables of whatever list the API returns.
 */
import { get, request } from "../api.js";
import { fill, h, table, toast } from "../dom.js";
import type { Page } from "../live.js";

function cell(v: unknown): string {
  if (v === null || v === undefined) return "–";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function listPage(id: string, title: string, path: string): Page {
  return {
    id,
    title,
    mount(root) {
      const box = h("div", { id: `${id}-list` });
      root.append(h("h2", null, title), box);
      const load = async () => {
        try {
          const data = await get<Record<string, unknown>>(path);
          const rows = (Object.values(data).find(Array.isArray) as Record<string, unknown>[] | undefined) ?? [data];
          const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
          fill(box, table(cols, rows.map((r) => cols.map((c) => cell(r[c])))));
        } catch (err) {
          toast((err as Error).message, "error");
        }
      };
      void load();
      const timer = setInterval(() => void load(), 5000);
      return () => clearInterval(timer);
    },
  };
}

/** Whether the broker has something to show there: the API answers, and its list is not empty (no bridges configured: no page). */
async function hasEntries(path: string): Promise<boolean> {
  const res = await request("GET", path).catch(() => null);
  if (res?.ok !== true) return false;
  const data = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  const list = data ? Object.values(data).find(Array.isArray) : undefined;
  return list === undefined || list.length > 0;
}

/** The pages whose APIs this broker has. */
export async function extraPages(): Promise<Page[]> {
  const candidates: [string, string, string][] = [
    ["nodes", "Nodes", "/cluster"],
    ["bridges", "Bridges", "/bridges"],
  ];
  const found = await Promise.all(candidates.map(([, , path]) => hasEntries(path)));
  return candidates.filter((_, i) => found[i]).map(([id, title, path]) => listPage(id, title, path));
}
