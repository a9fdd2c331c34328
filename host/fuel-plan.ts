/**
 * The fuel cost model (fuel.ts describes it for plugin authors): where charges go
 * and how much each one is. Nothing here modifies the module; fuel.ts rewrites it
 * from these plans.
 *
 * A "site" is a place that gets a charge when it is entered: a function body, a loop
 * body (once per iteration), a legacy-EH catch_all body, or an arm of an `if`. Its cost
 * is the number of instructions that belong to it directly — not those of nested loops
 * or nested arms, which are sites of their own. So a pass through a loop body pays for
 * the arms it takes, not for every arm.
 *
 * Two refinements keep the checks off the hot path without changing what is charged:
 *   - hoisting: the cheaper arm's cost of every `if` moves up to the site that holds the
 *     `if` (both arms cost at least that much); the other arm keeps only the difference,
 *     so an arm that costs no more than its sibling gets no charge at all.
 *   - small arms: when the dearer arm costs at most MAX_FOLDED_ARM more than its sibling,
 *     the whole dearer arm moves up (the `if` is charged as if the dearer arm ran, an
 *     over-charge of at most MAX_FOLDED_ARM on the cheaper path) and neither arm carries
 *     a charge: the counter no longer differs between the paths, so the engine keeps one
 *     value in one register instead of merging two at every join.
 *   - static functions: a function without loops, exception handling, indirect calls or
 *     calls to anything but other static functions, and that nothing outside the module
 *     can call (not exported, not in a table, not `ref.func`'d, not the start function),
 *     is charged by its caller, right before each call (a bare subtract), for its longest
 *     path (the dearer arm of every `if`, plus its static callees). It runs no fuel code
 *     of its own, and a cached caller keeps its counter in a register across the call.
 *   - back-edge charging (fuel-loop-merge.ts): a `while`-shaped loop whose only way round is an
 *     arm ending in `br $loop` pays its header, and the arms that arm sits in, with that
 *     arm: one checked charge per iteration instead of a check plus subtracts.
 */
import binaryen from "binaryen";
import {
  accessor,
  BlockId,
  BreakId,
  BrOnId,
  CallId,
  CallIndirectId,
  CallRefId,
  functionBody,
  getFunctionBody,
  IfId,
  ifSlots,
  loopBody,
  LoopId,
  opaqueCost,
  RefFuncId,
  RethrowId,
  ReturnId,
  SHAPES,
  STRUCTURAL,
  SwitchId,
  ThrowId,
  TryId,
  tryHasCatchAll,
  tryNumCatchBodies,
  type Ref,
  type Slot,
} from "./fuel-ir.js";
import { mergeLoopHeaders } from "./fuel-loop-merge.js";

/** Upper bound for one static charge, so `fuel - cost` can never wrap around. */
export const MAX_COST = 0x3fffffff;
/**
 * Longest path a static function may have. Past it the function keeps its own entry
 * check and is charged on the path it takes. The longest path over-charges a function
 * that usually leaves early (a `br_if` out of a block skips code, and the static callees
 * in it, that its longest path counts): measured on acl's subscribe hook, 10,000 here
 * charged 70,182 fuel where the taken path is 31,402, and 100 charges 32,863. Small
 * helpers are where the saved entry check matters (it is a few instructions); this also
 * bounds how far a plugin can run past its budget between two checks.
 */
export const MAX_STATIC_COST = 100;

/**
 * Arm differences up to this much are charged up front with the `if` (see "small arms"
 * in the module comment). Measured (bench/README.md, "Fuel, part 4"): the bare
 * subtracts of arms inside the SDK's short loops (UTF-16/UTF-8 conversion, topic
 * matching) made about a third of the metering time of router's 64 B publish hook (with
 * no arm charges at all, an unsafe build for measurement: 13.6% → 9.6%), and 16 folds
 * most of them (177 of 208 per call) while moving its fuel from 7,027 to 8,298 (+18%;
 * 16 KB: +0.8%).
 */
export const MAX_FOLDED_ARM = 16;

export type SiteKind = "entry" | "loop" | "catch" | "arm";

/** A place that gets a charge. */
export interface Site {
  kind: SiteKind;
  slot: Slot;
  parent: Ref;
  index: number;
  cost: number;
  /** Header site of the innermost loop whose body holds this site (a loop's own header: itself). */
  inLoop?: Site;
  /** An arm's: the site that holds its `if` (entering the arm passes that site's charge first). */
  outer?: Site;
  /** An arm charge that must be checked: it is the only charge on its loop's way round (fuel-loop-merge.ts). */
  checked?: boolean;
  /** A loop header whose cost was moved to its back-edge arm and to the code before the loop: no charge of its own. */
  free?: boolean;
}

/** A loop, and how its label is branched to (fuel-loop-merge.ts decides from this whether its header can be merged). */
export interface LoopInfo {
  header: Site;
  /** The site that holds the `loop` expression: entering the loop from outside passes its charge. */
  owner: Site;
  label: string | null;
  /** Branches to the label, of any kind. */
  branches: number;
  /** The one kind that allows merging: an unconditional `br` without value, last in the body of an arm of this loop. */
  tailArm: Site | null;
}

/** A call, return or throw: where a cached counter must be written back (and reloaded after a call). */
export interface Exit {
  expr: Ref;
  id: number;
  slot: Slot;
  parent: Ref;
  index: number;
  /** A call to a static function: charged this much right before it (settlePlans). */
  staticCost?: number;
  /** A return_call: leaves the function even when its callee is static. */
  isReturn?: boolean;
}

/** An `if`: the site that holds it and its arms' sites (`else` null when there is none). */
interface Branch {
  owner: Site;
  then: Site;
  else: Site | null;
}

/** A direct call: charged at the call site if the callee turns out to be static. */
interface DirectCall {
  callee: string;
  owner: Site;
  exit: Exit;
  isReturn: boolean;
}

export interface FunctionPlan {
  fn: Ref;
  name: string;
  entry: Site;
  /** Loop, catch_all and arm sites, in pre-order (a site before the sites nested in it). */
  sites: Site[];
  exits: Exit[];
  loops: number;
  /** Has try/rethrow or a node that could not be taken apart: use the "global" shape. */
  uncacheable: boolean;
  /** Arm and static-call charges are bare subtracts (a later check catches a negative counter); false if the function is too big to rule out wrap-around. */
  uncheckedArms: boolean;
  branches: Branch[];
  calls: DirectCall[];
  /** Has call_indirect / call_ref: cannot be static. */
  indirect: boolean;
  /** Functions whose address this one takes (ref.func). */
  refFuncs: string[];
  /** Loops in pre-order. */
  loopInfos: LoopInfo[];
}

const callIsReturn = accessor("Call", "isReturn") as unknown as (expr: Ref) => boolean;
const callTargetName = accessor("Call", "getTarget") as unknown as (expr: Ref) => string;
const refFuncName = accessor("RefFunc", "getFunc") as unknown as (expr: Ref) => string;
const loopName = accessor("Loop", "getName") as unknown as (expr: Ref) => string | null;
const breakName = accessor("Break", "getName") as unknown as (expr: Ref) => string;
const breakCondition = accessor("Break", "getCondition");
const breakValue = accessor("Break", "getValue");
const switchNames = accessor("Switch", "getNames") as unknown as (expr: Ref) => string[];
const switchDefault = accessor("Switch", "getDefaultName") as unknown as (expr: Ref) => string | null;
const brOnName = accessor("BrOn", "getName") as unknown as (expr: Ref) => string;
const blockNumChildren = accessor("Block", "getNumChildren") as unknown as (expr: Ref) => number;

/**
 * Walks one function body iteratively (deep expression trees must not overflow the JS
 * stack), computing each site's own cost and recording sites, branches, exits and
 * direct calls, each with the slot it sits in. Nothing is modified here.
 */
export function planFunction(fn: Ref, name: string): FunctionPlan {
  const entry: Site = { kind: "entry", slot: functionBody, parent: fn, index: 0, cost: 0 };
  const plan: FunctionPlan = {
    fn, name, entry, sites: [], exits: [], loops: 0, uncacheable: false, uncheckedArms: true, branches: [], calls: [], indirect: false, refFuncs: [], loopInfos: [],
  };
  const loopsByLabel = new Map<string, LoopInfo>();
  /** Counts a branch to `label`; a label that names no loop (a block) is none of our business. */
  const branchTo = (label: string | null, tailArm: Site | null = null): void => {
    const loop = label === null ? undefined : loopsByLabel.get(label);
    if (!loop) return;
    loop.branches++;
    loop.tailArm = loop.branches === 1 && tailArm?.inLoop === loop.header ? tailArm : null;
  };
  // Parallel stacks: the expression, where it sits, and the site its cost goes to.
  const exprs: Ref[] = [getFunctionBody(fn)];
  const slots: Slot[] = [functionBody];
  const parents: Ref[] = [fn];
  const indices: number[] = [0];
  const owners: Site[] = [entry];
  const push = (expr: Ref, slot: Slot, parent: Ref, index: number, owner: Site): void => {
    exprs.push(expr);
    slots.push(slot);
    parents.push(parent);
    indices.push(index);
    owners.push(owner);
  };
  const newSite = (kind: SiteKind, slot: Slot, parent: Ref, index: number, inLoop: Site | undefined): Site => {
    const site: Site = { kind, slot, parent, index, cost: 0, inLoop };
    plan.sites.push(site);
    return site;
  };
  while (exprs.length > 0) {
    const expr = exprs.pop()!;
    const slot = slots.pop()!;
    const parent = parents.pop()!;
    const index = indices.pop()!;
    let owner = owners.pop()!;
    const id = binaryen.getExpressionId(expr);
    const shape = SHAPES.get(id);
    if (!shape) {
      owner.cost += opaqueCost(expr, name);
      plan.uncacheable = true;
      continue;
    }
    if (!STRUCTURAL.has(id)) owner.cost++;
    if (id === IfId) {
      // The condition (and the if itself) belong to the current site; each arm is a site.
      push(ifSlots.condition.get(expr, 0), ifSlots.condition, expr, 0, owner);
      const then = newSite("arm", ifSlots.ifTrue, expr, 0, owner.inLoop);
      then.outer = owner;
      const otherwise = ifSlots.ifFalse.get(expr, 0) ? newSite("arm", ifSlots.ifFalse, expr, 0, owner.inLoop) : null;
      if (otherwise) otherwise.outer = owner;
      plan.branches.push({ owner, then, else: otherwise });
      push(ifSlots.ifTrue.get(expr, 0), ifSlots.ifTrue, expr, 0, then);
      if (otherwise) push(ifSlots.ifFalse.get(expr, 0), ifSlots.ifFalse, expr, 0, otherwise);
      continue;
    }
    if (id === LoopId) {
      const header = newSite("loop", loopBody, expr, 0, undefined);
      header.inLoop = header;
      const info: LoopInfo = { header, owner, label: loopName(expr), branches: 0, tailArm: null };
      plan.loopInfos.push(info);
      if (info.label !== null) {
        // Names are unique per function as binaryen reads a binary; should one repeat, neither loop is merged.
        if (loopsByLabel.has(info.label)) loopsByLabel.get(info.label)!.branches = Infinity;
        else loopsByLabel.set(info.label, info);
      }
      owner = header;
      plan.loops++;
    } else if (id === BreakId) {
      const tail = owner.kind === "arm" && !breakCondition(expr) && !breakValue(expr) && isLastInArm(owner, expr, parent, index);
      branchTo(breakName(expr), tail ? owner : null);
    } else if (id === SwitchId) {
      for (const label of switchNames(expr)) branchTo(label);
      branchTo(switchDefault(expr));
    } else if (id === BrOnId) {
      branchTo(brOnName(expr));
    } else if (id === TryId || id === RethrowId) {
      plan.uncacheable = true;
    } else if (id === RefFuncId) {
      plan.refFuncs.push(refFuncName(expr));
    } else if (id === CallId || id === CallIndirectId || id === CallRefId || id === ReturnId || id === ThrowId) {
      const exit: Exit = { expr, id, slot, parent, index };
      plan.exits.push(exit);
      if (id === CallId) plan.calls.push({ callee: callTargetName(expr), owner, exit, isReturn: callIsReturn(expr) });
      else if (id !== ReturnId && id !== ThrowId) plan.indirect = true;
    }
    for (const single of shape.singles) {
      const child = single.get(expr, 0);
      if (child) push(child, single, expr, 0, owner);
    }
    const catchAll = id === TryId && tryHasCatchAll(expr) ? tryNumCatchBodies(expr) - 1 : -1;
    for (const list of shape.lists) {
      for (let i = 0, n = list.count(expr); i < n; i++) {
        const child = list.slot.get(expr, i);
        if (!child) continue;
        // The catch_all body is charged on its own, when the handler is entered.
        push(child, list.slot, expr, i, i === catchAll ? newSite("catch", list.slot, expr, i, owner.inLoop) : owner);
      }
    }
  }
  return plan;
}

/** True when `expr` (at `index` of `parent`) is the body of arm `arm`, or the last child of the block that is. */
function isLastInArm(arm: Site, expr: Ref, parent: Ref, index: number): boolean {
  const body = arm.slot.get(arm.parent, arm.index);
  if (body === expr) return true;
  return body === parent && binaryen.getExpressionId(parent) === BlockId && index === blockNumChildren(parent) - 1;
}

/**
 * Marks the calls to static callees with their cost, charged right before the call (not
 * with the site that holds it: a `br_if` may skip the call), and returns what they add
 * to each site at most.
 */
function chargeStaticCalls(plan: FunctionPlan, staticCost: ReadonlyMap<string, number>): Map<Site, number> {
  const extra = new Map<Site, number>();
  for (const call of plan.calls) {
    const cost = staticCost.get(call.callee);
    if (cost === undefined) continue;
    call.exit.staticCost = cost;
    call.exit.isReturn = call.isReturn;
    extra.set(call.owner, (extra.get(call.owner) ?? 0) + cost);
  }
  return extra;
}

/** Longest path through a loop-free plan: each `if` counts its dearer arm, each static call its callee's longest path. */
function longestPath(plan: FunctionPlan, extra: ReadonlyMap<Site, number>): number {
  const longest = new Map<Site, number>();
  const of = (s: Site) => longest.get(s) ?? s.cost + (extra.get(s) ?? 0);
  // Branches are in pre-order: walking them backwards settles nested ifs before the ifs around them.
  for (let k = plan.branches.length - 1; k >= 0; k--) {
    const b = plan.branches[k]!;
    longest.set(b.owner, of(b.owner) + Math.max(of(b.then), b.else ? of(b.else) : 0));
  }
  return of(plan.entry);
}

/**
 * Moves the cheaper arm's cost of every `if` up to the site that holds it, or the dearer
 * arm's when the two differ by at most MAX_FOLDED_ARM (see the module comment).
 */
function hoist(plan: FunctionPlan, extra: ReadonlyMap<Site, number>): void {
  // Reverse pre-order: an `if` nested in an arm is settled before the arm's own cost is compared.
  for (let k = plan.branches.length - 1; k >= 0; k--) {
    const b = plan.branches[k]!;
    const shared = Math.min(b.then.cost, b.else ? b.else.cost : 0);
    const dearer = Math.max(b.then.cost, b.else ? b.else.cost : 0);
    if (dearer - shared <= MAX_FOLDED_ARM) {
      b.owner.cost += dearer;
      b.then.cost = 0;
      if (b.else) b.else.cost = 0;
      continue;
    }
    if (shared === 0) continue;
    b.owner.cost += shared;
    b.then.cost -= shared;
    b.else!.cost -= shared;
  }
  // After hoisting: a header's final cost (with what was hoisted into it) is what moves.
  mergeLoopHeaders(plan);
  const total = [...extra.values()].reduce((n, c) => n + c, plan.sites.reduce((n, s) => n + s.cost, plan.entry.cost));
  plan.uncheckedArms = total <= MAX_COST;
}

/** Functions something outside the module's own direct calls can enter. */
export function pinnedFunctions(mod: binaryen.Module, plans: FunctionPlan[]): Set<string> {
  const pinned = new Set<string>();
  for (let i = 0, n = mod.getNumExports(); i < n; i++) {
    const info = binaryen.getExportInfo(mod.getExportByIndex(i));
    if (info.kind === binaryen.ExternalFunction) pinned.add(info.value);
  }
  for (let i = 0, n = mod.getNumElementSegments(); i < n; i++) {
    for (const name of binaryen.getElementSegmentInfo(mod.getElementSegmentByIndex(i)).data) pinned.add(name);
  }
  for (let i = 0, n = mod.getNumGlobals(); i < n; i++) {
    const init = binaryen.getGlobalInfo(mod.getGlobalByIndex(i)).init;
    if (init && binaryen.getExpressionId(init) === RefFuncId) pinned.add(refFuncName(init));
  }
  for (const plan of plans) for (const name of plan.refFuncs) pinned.add(name);
  const start = mod.getStart();
  if (start) pinned.add(binaryen.getFunctionInfo(start).name);
  return pinned;
}

/**
 * Settles every plan: decides which functions are static (returned with their cost,
 * with the neutral imports at 0; fuel.ts leaves them untouched), charges static calls
 * at their call sites and hoists shared arm costs in the others.
 */
export function settlePlans(plans: FunctionPlan[], pinned: ReadonlySet<string>, neutralImports: Iterable<string>): Map<string, number> {
  const byName = new Map(plans.map((p) => [p.name, p]));
  // A neutral import is charged like any instruction (1, at the call) and needs no write-back.
  const staticCost = new Map<string, number>([...neutralImports].map((name) => [name, 0]));
  const settled = new Set<string>();
  const candidate = (p: FunctionPlan) => p.loops === 0 && !p.uncacheable && !p.indirect && !pinned.has(p.name);
  // Depth-first over the call graph, callees settled before their callers; a function
  // met again while still open is recursive, and a recursive function is never static.
  const open = new Set<string>();
  const settle = (root: FunctionPlan): void => {
    const stack: { plan: FunctionPlan; next: number }[] = [{ plan: root, next: 0 }];
    open.add(root.name);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const call = top.plan.calls[top.next++];
      if (call) {
        const callee = byName.get(call.callee); // undefined: an import
        if (callee && !settled.has(callee.name) && !open.has(callee.name)) {
          open.add(callee.name);
          stack.push({ plan: callee, next: 0 });
        }
        continue;
      }
      stack.pop();
      const plan = top.plan;
      open.delete(plan.name);
      settled.add(plan.name);
      const extra = chargeStaticCalls(plan, staticCost);
      const isStatic = candidate(plan) && plan.calls.every((c) => staticCost.has(c.callee));
      if (isStatic) {
        const cost = Math.max(1, longestPath(plan, extra));
        if (cost <= MAX_STATIC_COST) {
          staticCost.set(plan.name, cost);
          continue;
        }
      }
      hoist(plan, extra);
    }
  };
  for (const plan of plans) if (!settled.has(plan.name)) settle(plan);
  return staticCost;
}
