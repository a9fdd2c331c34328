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
 */
import type { FunctionPlan } from "./fuel-plan.js";

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
    arm.cost += header.cost;
    arm.checked = true;
    loop.owner.cost += header.cost;
    header.cost = 0;
    header.free = true;
    merged++;
  }
  return merged;
}
