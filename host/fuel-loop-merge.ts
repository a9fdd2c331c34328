/**
 * Back-edge charging for `while`-shaped loops (a refinement of the fuel cost model in
 * fuel-plan.ts; fuel.ts rewrites the module from the result).
 *
 * AssemblyScript (through Binaryen) emits `while (c) { ... }` as
 *
 *   loop $L { H...; if (c) { A...; br $L } }
 *
 * where the loop header site H holds the condition and the arm A is the body. Metered
 * per site, one iteration pays a checked charge for H (subtract, compare, branch) and a
 * bare subtract for A. When the arm's final `br $L` is the only branch to $L at all (no
 * `br_if`, `br_table` or `br_on` to it, none from a nested loop), every iteration after
 * the first starts right after A's charge. So H's cost moves:
 *
 *   - into A's charge, which becomes checked: it pays this iteration's body and the next
 *     header — one checked charge per iteration, and still one check per way round, so
 *     an infinite loop still runs out of fuel;
 *   - into the charge of the site that holds the loop, for the first header.
 *
 * The total stays the cost model's, `(n + 1) × H + n × A` for n iterations, with one
 * exception that over-charges by at most H: an iteration that enters A and leaves the
 * loop before its `br $L` (a `br` out, a `return`), or the holding site left before the
 * loop is reached, has paid a header that never runs. Never less than executed; still
 * static, so deterministic.
 *
 * Arms on the way round (2026-12-06, fuel6): A may sit in other arms of the loop's
 * body, `loop $L { H; if (c1) { B; if (c2) { A; br $L } } }` (the SDK's skip-whitespace
 * loop: `while (p < len) { load, compare; if (space) { p++; continue } break }`). Every
 * way round then passes H and B as well, so B's charge moves with H: into A's checked
 * charge (for the next iteration) and into the holding site's (for the first). B no
 * longer carries a bare subtract of its own. The over-charge bound becomes H plus those
 * arms, paid once when the loop is left by a header that fails (B never ran); leaving
 * from inside B (c2 false, the usual way out of such a loop) is charged exactly (with
 * several such arms: from inside the innermost; from an outer one, the inner ones it
 * never entered are paid).
 */
import type { FunctionPlan, Site } from "./fuel-plan.js";

/** Moves the header cost of every mergeable loop (see the module comment); returns how many were merged. */
export function mergeLoopHeaders(plan: FunctionPlan): number {
  // try/rethrow or nodes binaryen.js cannot take apart (try_table's catch clauses name labels): leave as is.
  if (plan.uncacheable) return 0;
  let merged = 0;
  // Inner loops first: an inner header's cost may go to a site that is itself an outer header, which must move it on.
  for (let k = plan.loopInfos.length - 1; k >= 0; k--) {
    const loop = plan.loopInfos[k]!;
    const arm = loop.tailArm;
    if (loop.branches !== 1 || !arm) continue;
    const header = loop.header;
    // Every way round passes the header and each arm the tail arm sits in: all of them
    // are this iteration's "way in" and move together.
    let wayIn = header.cost;
    const arms = armsOnTheWayRound(arm, header);
    for (const outer of arms) wayIn += outer.cost;
    arm.cost += wayIn;
    arm.checked = true;
    loop.owner.cost += wayIn;
    header.cost = 0;
    header.free = true;
    for (const outer of arms) outer.cost = 0;
    merged++;
  }
  return merged;
}

/**
 * The arms between a loop's header and its tail arm (the arms the tail arm sits in,
 * innermost first), or none when anything else lies between (only arms do in a plan
 * that can be merged; kept as a guard).
 */
function armsOnTheWayRound(tail: Site, header: Site): Site[] {
  const arms: Site[] = [];
  for (let site = tail.outer; site !== header; site = site.outer) {
    if (!site || site.kind !== "arm" || site.inLoop !== header) return [];
    arms.push(site);
  }
  return arms;
}
