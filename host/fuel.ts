/**
 * CPU budget ("fuel") metering for Wasm plugins, by rewriting the binary at load time.
 *
 * Timers cannot interrupt synchronous Wasm on Node's main thread, so the budget is
 * enforced inside the module: `instrumentFuel` adds a mutable i32 global
 * `__wasmq_fuel` (exported under that name) and charges it
 *
 *   - at the entry of every defined function (AssemblyScript runtime included),
 *   - at the top of every loop body, i.e. once per iteration, whatever branch
 *     (`br`, `br_if`, `br_table`, `br_on_*`) re-enters the loop,
 *   - at the entry of every legacy-EH `catch_all` body (see "Exceptions" below).
 *
 * A charge is `fuel -= COST; if (fuel < 0) { fuel = -1; call $fuel_exhausted; unreachable }`,
 * all inlined: the import `"wasmq" "fuel_exhausted"` (the host throws from it) is called
 * only once the budget is exhausted, and `unreachable` traps should it return.
 *
 * Cost model — fuel ≈ Wasm instructions executed, counted per function entry and per
 * loop iteration. COST is static: the number of Binaryen IR expressions in the
 * function body (resp. the loop body, resp. the catch body), not counting structural
 * nodes that execute no instruction (`block`, `loop`, `nop`, `pop`) and not counting
 * what sits inside a nested loop (that is charged per iteration of the nested loop),
 * with a minimum of 1. Calls count 1 at the call site; the callee is charged at its
 * own entry. Both arms of an `if` are counted, so COST is an upper bound on one pass
 * through the block (an early `return` or `br` out is still charged in full): one unit
 * is roughly one executed Wasm instruction, never fewer. The count is deterministic:
 * identical calls on identical state use identical fuel.
 *
 * Two shapes of check, chosen per function:
 *
 *   - "global" (functions without loops, or with exception handling): every charge
 *     reads and writes the global directly, through a scratch local:
 *       global.set $fuel (local.tee $t (i32.sub (global.get $fuel) (i32.const COST)))
 *       if (i32.lt_s (local.get $t) (i32.const 0)) (call $exhausted) (unreachable)
 *   - "cached" (functions with loops): the remaining fuel lives in a local `$f` so that
 *     a loop iteration costs a register subtract, compare and not-taken branch, with no
 *     memory traffic. `$f` is loaded from the global at entry, written back right
 *     before every call, `return`, `throw` and the end of the body (after their
 *     operands are evaluated, so the callee sees the exact value), and reloaded after
 *     every call (the callee, or a host import, may have charged the global). A tight
 *     loop with a call in it pays one store and one load per call on top of the callee's
 *     own entry charge.
 *
 * The global starts at 0x7fffffff so the module's start function (e.g. AssemblyScript's
 * static initialisers) can run at instantiation; the host sets
 * `instance.exports.__wasmq_fuel.value = budget` (a non-negative i32) before every call
 * and reads the remainder afterwards (fuel used = budget - value). After a normal return
 * the global is exact; on exhaustion it is pinned to -1 before the import is called;
 * after another trap it may be stale (the instance is discarded anyway).
 *
 * Exceptions: with the exception-handling proposal, a JS exception thrown by the
 * `fuel_exhausted` import can be caught by a Wasm `catch_all`. To keep that from
 * swallowing an exhaustion, every `catch_all` body starts with a check too, so the
 * handler re-throws at once while the fuel is negative; and since every loop iteration
 * and function entry re-checks, a module cannot make progress once its fuel is
 * negative. (Functions with `try` always use the "global" shape, so a handler never
 * works from a stale cached counter.) Typed `catch $tag` clauses are not checked (a JS
 * exception does not match a Wasm tag on Node 20), nor are `try_table` handlers
 * (exnref, which Node 20's engine does not support). A strict host should still treat
 * "the call returned but the global is < 0" as an exhaustion.
 *
 * Supported input: any module valid under READ_FEATURES (roughly what Node 20 runs: MVP,
 * mutable globals, sign-ext, non-trapping float-to-int, bulk memory, SIMD, reference
 * types, multi-value, tail calls, threads/atomics, legacy exception handling, plus
 * extended-const and relaxed SIMD, which the engine itself may still refuse), with or
 * without imported memory, with or without a start function. Others (memory64, multi-
 * memory, GC, ...) are refused with an error naming the supported set. Binaryen IR nodes whose operands binaryen.js does not expose
 * (`table.fill/copy/init`, `try_table`, `throw_ref`, ...) are inspected through their
 * printed text, make their function use the "global" shape, and are refused only if a
 * loop is nested inside them, since that loop could not be metered.
 *
 * Load-time cost: one binaryen read, walk, validate and write. For a 99 KB AssemblyScript
 * module: ~100–300 ms once binaryen is warm; the first module in a process pays
 * binaryen's own warm-up (~0.8 s on a loaded 2-core machine). Importing this module
 * instantiates binaryen.js (top-level await, ~0.5–1 s). Code grows by ~15–45%
 * (write-back/reload around calls in "cached" functions).
 */
import binaryen from "binaryen";

export { FUEL_GLOBAL, FUEL_BUDGET_GLOBAL, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME } from "./fuel-names.js";
import { FUEL_GLOBAL, FUEL_BUDGET_GLOBAL, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME } from "./fuel-names.js";

export interface FuelInstrumentResult {
  /** The instrumented module. */
  binary: Uint8Array;
  /** Defined functions that got an entry check. */
  functionsInstrumented: number;
  /** Loops that got a per-iteration check. */
  loopsInstrumented: number;
}

export { FuelExhaustedError } from "./fuel-names.js";
import { FuelExhaustedError } from "./fuel-names.js";

/** True for a FuelExhaustedError (also one from another copy of this module, matched by name). */
export function isFuelExhausted(err: unknown): boolean {
  return err instanceof FuelExhaustedError || (err instanceof Error && err.name === "FuelExhaustedError");
}

/** Initial value of the fuel global, so the start function can run at instantiation. */
const INITIAL_FUEL = 0x7fffffff;
/** Upper bound for one static charge, so `fuel - cost` can never wrap around. */
const MAX_COST = 0x3fffffff;
/**
 * Value the global is pinned to on exhaustion. Pinning (rather than leaving the
 * decremented value) keeps the global within [-1 - MAX_COST, 0x7fffffff] even if a
 * `catch_all` handler catches the host's error and gets charged again: it can never
 * wrap around to a large positive budget.
 */
const EXHAUSTED = -1;

const F = binaryen.Features;
/** Features accepted when reading a module (and kept when writing it back). */
const READ_FEATURES =
  F.MutableGlobals |
  F.NontrappingFPToInt |
  F.SignExt |
  F.BulkMemory |
  F.BulkMemoryOpt |
  F.SIMD128 |
  F.ReferenceTypes |
  F.Multivalue |
  F.TailCall |
  F.Atomics |
  F.ExceptionHandling |
  F.ExtendedConst |
  F.RelaxedSIMD;

type Ref = number;
/** binaryen.js 132 takes the features as readBinary's optional 2nd argument (its .d.ts names a missing readBinaryWithFeatures). */
const readBinary = binaryen.readBinary as (data: Uint8Array, features?: binaryen.Features) => binaryen.Module;
type Accessor = (expr: Ref, ...args: number[]) => Ref;
/** binaryen.js's class-style expression wrappers (`binaryen.Loop.getBody(expr)` etc.), untyped in its .d.ts. */
const classes = binaryen as unknown as Record<string, Record<string, Accessor> | undefined>;
const raw = binaryen as unknown as Record<string, ((...args: number[]) => number) | undefined>;

function accessor(cls: string, name: string): Accessor {
  const fn = classes[cls]?.[name];
  if (typeof fn !== "function") throw new Error(`fuel: binaryen.${cls}.${name} is missing (unsupported binaryen version)`);
  return fn;
}

function rawFn(name: string): (...args: number[]) => number {
  const fn = raw[name];
  if (typeof fn !== "function") throw new Error(`fuel: binaryen.${name} is missing (unsupported binaryen version)`);
  return fn;
}

function expressionId(cls: string): number {
  return rawFn(`_Binaryen${cls}Id`)();
}

const addVar = rawFn("_BinaryenFunctionAddVar");

/** One child position of a parent: read and replace the child at `index` (list slots) or the only one. */
interface Slot {
  get(parent: Ref, index: number): Ref;
  set(parent: Ref, index: number, child: Ref): void;
}

/** Child positions of one expression kind: single getters, then `[count, at]` lists. */
interface Shape {
  singles: Slot[];
  lists: { count: Accessor; slot: Slot }[];
}

function shape(cls: string, singles: string[], lists: string[] = []): Shape {
  return {
    singles: singles.map((name) => {
      const get = accessor(cls, `get${name}`);
      const set = accessor(cls, `set${name}`);
      return { get: (p: Ref) => get(p), set: (p: Ref, _i: number, c: Ref) => void set(p, c) };
    }),
    lists: lists.map((spec) => {
      // "Operand" -> getNumOperands / getOperandAt / setOperandAt; "Child:Children" for irregular plurals.
      const [name, plural = `${name}s`] = spec.split(":") as [string, string?];
      const count = accessor(cls, `getNum${plural}`);
      const get = accessor(cls, `get${name}At`);
      const set = accessor(cls, `set${name}At`);
      return { count, slot: { get: (p: Ref, i: number) => get(p, i), set: (p: Ref, i: number, c: Ref) => void set(p, i, c) } };
    }),
  };
}

const LEAF: Shape = { singles: [], lists: [] };

/** Child positions of every expression kind binaryen.js can take apart, by expression id. */
const SHAPES = new Map<number, Shape>();
/** Kinds that do not execute an instruction of their own. */
const STRUCTURAL = new Set<number>();

for (const cls of [
  "Nop", "Unreachable", "Pop", "RefNull", "LocalGet", "GlobalGet", "Const", "MemorySize", "TableSize",
  "DataDrop", "ElemDrop", "AtomicFence", "Pause", "Rethrow", "RefFunc", "StringConst",
]) {
  SHAPES.set(expressionId(cls), LEAF);
}
for (const [cls, singles, lists] of [
  ["Block", [], ["Child:Children"]],
  ["If", ["Condition", "IfTrue", "IfFalse"]],
  ["Loop", ["Body"]],
  ["Break", ["Condition", "Value"]],
  ["Switch", ["Condition", "Value"]],
  ["Call", [], ["Operand"]],
  ["CallIndirect", ["Target"], ["Operand"]],
  ["CallRef", ["Target"], ["Operand"]],
  ["LocalSet", ["Value"]],
  ["GlobalSet", ["Value"]],
  ["TableGet", ["Index"]],
  ["TableSet", ["Index", "Value"]],
  ["TableGrow", ["Value", "Delta"]],
  ["MemoryGrow", ["Delta"]],
  ["Load", ["Ptr"]],
  ["Store", ["Ptr", "Value"]],
  ["Unary", ["Value"]],
  ["Binary", ["Left", "Right"]],
  ["Select", ["IfTrue", "IfFalse", "Condition"]],
  ["Drop", ["Value"]],
  ["Return", ["Value"]],
  ["AtomicRMW", ["Ptr", "Value"]],
  ["AtomicCmpxchg", ["Ptr", "Expected", "Replacement"]],
  ["AtomicWait", ["Ptr", "Expected", "Timeout"]],
  ["AtomicNotify", ["Ptr", "NotifyCount"]],
  ["SIMDExtract", ["Vec"]],
  ["SIMDReplace", ["Vec", "Value"]],
  ["SIMDShuffle", ["Left", "Right"]],
  ["SIMDTernary", ["A", "B", "C"]],
  ["SIMDShift", ["Vec", "Shift"]],
  ["SIMDLoad", ["Ptr"]],
  ["SIMDLoadStoreLane", ["Ptr", "Vec"]],
  ["MemoryInit", ["Dest", "Offset", "Size"]],
  ["MemoryCopy", ["Dest", "Source", "Size"]],
  ["MemoryFill", ["Dest", "Value", "Size"]],
  ["RefIsNull", ["Value"]],
  ["RefAs", ["Value"]],
  ["RefEq", ["Left", "Right"]],
  ["Try", ["Body"], ["CatchBody:CatchBodies"]],
  ["Throw", [], ["Operand"]],
  ["TupleMake", [], ["Operand"]],
  ["TupleExtract", ["Tuple"]],
  ["RefI31", ["Value"]],
  ["I31Get", ["I31"]],
  ["RefTest", ["Ref"]],
  ["RefCast", ["Ref"]],
  ["BrOn", ["Ref"]],
  ["StructNew", [], ["Operand"]],
  ["StructGet", ["Ref"]],
  ["StructSet", ["Ref", "Value"]],
  ["ArrayNew", ["Init", "Size"]],
  ["ArrayNewFixed", [], ["Value"]],
  ["ArrayNewData", ["Offset", "Size"]],
  ["ArrayNewElem", ["Offset", "Size"]],
  ["ArrayGet", ["Ref", "Index"]],
  ["ArraySet", ["Ref", "Index", "Value"]],
  ["ArrayLen", ["Ref"]],
  ["ArrayFill", ["Ref", "Index", "Value", "Size"]],
  ["ArrayCopy", ["DestRef", "DestIndex", "SrcRef", "SrcIndex", "Length"]],
  ["ArrayInitData", ["Ref", "Index", "Offset", "Size"]],
  ["ArrayInitElem", ["Ref", "Index", "Offset", "Size"]],
] as [string, string[], string[]?][]) {
  SHAPES.set(expressionId(cls), shape(cls, singles, lists));
}
for (const cls of ["Block", "Loop", "Nop", "Pop"]) STRUCTURAL.add(expressionId(cls));

const LoopId = expressionId("Loop");
const TryId = expressionId("Try");
const RethrowId = expressionId("Rethrow");
const CallId = expressionId("Call");
const CallIndirectId = expressionId("CallIndirect");
const CallRefId = expressionId("CallRef");
const ReturnId = expressionId("Return");
const ThrowId = expressionId("Throw");
/** Leaves that neither read nor change the cached counter: a write-back can go before them. */
const PURE_LEAVES = new Set(["LocalGet", "GlobalGet", "Const", "RefNull", "RefFunc"].map(expressionId));

const loopBody: Slot = shape("Loop", ["Body"]).singles[0]!;
const getFunctionBody = accessor("Function", "getBody");
const setFunctionBody = accessor("Function", "setBody");
const functionBody: Slot = { get: (fn) => getFunctionBody(fn), set: (fn, _i, body) => void setFunctionBody(fn, body) };
const tryHasCatchAll = accessor("Try", "hasCatchAll");
const tryNumCatchBodies = accessor("Try", "getNumCatchBodies");
const callNumOperands = new Map([CallId, CallIndirectId, CallRefId, ThrowId].map((id) => [id, SHAPES.get(id)!.lists[0]!] as const));
const returnValue = SHAPES.get(ReturnId)!.singles[0]!;
/** call_indirect / call_ref evaluate their target after the operands. */
const callTarget = new Map([CallIndirectId, CallRefId].map((id) => [id, SHAPES.get(id)!.singles[0]!] as const));

/** A place that gets a charge: a function body, a loop body or a catch_all body. */
interface Site {
  slot: Slot;
  parent: Ref;
  index: number;
  cost: number;
}

/** A call, return or throw: where a cached counter must be written back (and reloaded after a call). */
interface Exit {
  expr: Ref;
  id: number;
  slot: Slot;
  parent: Ref;
  index: number;
}

interface FunctionPlan {
  fn: Ref;
  name: string;
  entry: Site;
  sites: Site[];
  exits: Exit[];
  loops: number;
  /** Has try/rethrow or a node that could not be taken apart: use the "global" shape. */
  uncacheable: boolean;
}

/** Static cost of a subtree binaryen.js cannot take apart; refuses it if it hides a loop. */
function opaqueCost(expr: Ref, fnName: string): number {
  const text = binaryen.emitText(expr);
  if (/\(loop\b/.test(text)) {
    const head = /^\(?([\w.]+)/.exec(text.trimStart())?.[1] ?? `expression id ${binaryen.getExpressionId(expr)}`;
    throw new Error(
      `cannot meter function "${fnName}": a loop is nested inside "${head}", whose operands binaryen.js does not expose`,
    );
  }
  // Roughly one instruction per parenthesised node.
  return Math.max(1, (text.match(/\(/g) ?? []).length);
}

/**
 * Walks one function body iteratively (deep expression trees must not overflow the JS
 * stack), computing the static costs and recording the sites and exits, each with the
 * slot it sits in. Nothing is modified here.
 */
function planFunction(fn: Ref, name: string): FunctionPlan {
  const entry: Site = { slot: functionBody, parent: fn, index: 0, cost: 0 };
  const plan: FunctionPlan = { fn, name, entry, sites: [], exits: [], loops: 0, uncacheable: false };
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
    if (id === LoopId) {
      owner = { slot: loopBody, parent: expr, index: 0, cost: 0 };
      plan.sites.push(owner);
      plan.loops++;
    } else if (id === TryId || id === RethrowId) {
      plan.uncacheable = true;
    } else if (id === CallId || id === CallIndirectId || id === CallRefId || id === ReturnId || id === ThrowId) {
      plan.exits.push({ expr, id, slot, parent, index });
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
        if (i === catchAll) {
          // The catch_all body is charged on its own, when the handler is entered.
          const site: Site = { slot: list.slot, parent: expr, index: i, cost: 0 };
          plan.sites.push(site);
          push(child, list.slot, expr, i, site);
        } else {
          push(child, list.slot, expr, i, owner);
        }
      }
    }
  }
  return plan;
}

function reservedNameError(what: string): Error {
  return new Error(`module already has ${what}, a name reserved for fuel metering`);
}

/** Refuses modules that already use our names; returns the internal function names in use. */
function checkNames(mod: binaryen.Module): Set<string> {
  const functions = new Set<string>();
  const isOurImport = (module: string | null, base: string | null) => module === FUEL_IMPORT_MODULE && base === FUEL_IMPORT_NAME;
  const ourImport = `an import "${FUEL_IMPORT_MODULE}" "${FUEL_IMPORT_NAME}"`;
  for (let i = 0, n = mod.getNumFunctions(); i < n; i++) {
    const info = binaryen.getFunctionInfo(mod.getFunctionByIndex(i));
    functions.add(info.name);
    if (isOurImport(info.module, info.base)) throw reservedNameError(ourImport);
  }
  for (let i = 0, n = mod.getNumGlobals(); i < n; i++) {
    const info = binaryen.getGlobalInfo(mod.getGlobalByIndex(i));
    if (info.name === FUEL_GLOBAL || info.base === FUEL_GLOBAL) throw reservedNameError(`a global "${FUEL_GLOBAL}"`);
    if (info.name === FUEL_BUDGET_GLOBAL || info.base === FUEL_BUDGET_GLOBAL) throw reservedNameError(`a global "${FUEL_BUDGET_GLOBAL}"`);
    if (isOurImport(info.module, info.base)) throw reservedNameError(ourImport);
  }
  for (let i = 0, n = mod.getNumExports(); i < n; i++) {
    const exported = binaryen.getExportInfo(mod.getExportByIndex(i)).name;
    if (exported === FUEL_GLOBAL || exported === FUEL_BUDGET_GLOBAL) throw reservedNameError(`an export "${exported}"`);
  }
  for (let i = 0, n = mod.getNumTables(); i < n; i++) {
    const info = binaryen.getTableInfo(mod.getTableByIndex(i));
    if (isOurImport(info.module, info.base)) throw reservedNameError(ourImport);
  }
  if (mod.hasMemory()) {
    const info = mod.getMemoryInfo();
    if (isOurImport(info.module, info.base)) throw reservedNameError(ourImport);
  }
  return functions;
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  return name;
}

/** Rewrites one function according to its plan. */
function rewriteFunction(m: binaryen.Module, plan: FunctionPlan, exhausted: string): void {
  const { i32, none, unreachable, auto } = binaryen;
  const fuel = FUEL_GLOBAL;
  const fn = plan.fn;
  const cached = plan.loops > 0 && !plan.uncacheable;
  const counter = addVar(fn, i32);
  const temps = new Map<number, number>();
  const temp = (type: number): number => {
    let index = temps.get(type);
    if (index === undefined) temps.set(type, (index = addVar(fn, type)));
    return index;
  };
  const cost = (c: number) => m.i32.const(Math.min(Math.max(c, 1), MAX_COST));
  const getCounter = () => m.local.get(counter, i32);
  const writeBack = () => m.global.set(fuel, getCounter());
  const reload = () => m.local.set(counter, m.global.get(fuel, i32));

  /**
   * `counter` now holds the new fuel value: when it is negative, pin the global to
   * EXHAUSTED and call the import (which throws).
   */
  const trapIfNegative = (): Ref =>
    m.if(
      m.i32.lt_s(getCounter(), m.i32.const(0)),
      m.block(null, [m.global.set(fuel, m.i32.const(EXHAUSTED)), m.call(exhausted, [], none), m.unreachable()]),
    );
  const charge = (site: Site, fromGlobal: boolean): Ref => {
    const next = m.i32.sub(fromGlobal ? m.global.get(fuel, i32) : getCounter(), cost(site.cost));
    // "global" shape: global.set $fuel (local.tee $t next); "cached": local.set $f next.
    return m.block(null, [cached ? m.local.set(counter, next) : m.global.set(fuel, m.local.tee(counter, next, i32)), trapIfNegative()]);
  };
  const prepend = (site: Site, fromGlobal: boolean): void => {
    const body = site.slot.get(site.parent, site.index);
    site.slot.set(site.parent, site.index, m.block(null, [charge(site, fromGlobal), body], auto));
  };
  /** Runs `after` once `expr` has been evaluated, keeping its value. */
  const then = (expr: Ref, after: Ref): Ref => {
    const type = binaryen.getExpressionType(expr);
    if (type === none || type === unreachable) return m.block(null, [expr, after], auto);
    const t = temp(type);
    return m.block(null, [m.local.set(t, expr), after, m.local.get(t, type)], type);
  };

  if (cached) {
    // Children before parents (reverse pre-order), re-reading each slot, so nested
    // rewrites compose: an inner call's wrapper is what the outer one wraps.
    for (let k = plan.exits.length - 1; k >= 0; k--) {
      const exit = plan.exits[k]!;
      // The operand evaluated last: after it, nothing changes the counter before the exit.
      let last: { slot: Slot; parent: Ref; index: number } | null = null;
      const target = callTarget.get(exit.id);
      const operands = callNumOperands.get(exit.id);
      if (target) last = { slot: target, parent: exit.expr, index: 0 };
      else if (operands && operands.count(exit.expr) > 0) {
        last = { slot: operands.slot, parent: exit.expr, index: operands.count(exit.expr) - 1 };
      } else if (exit.id === ReturnId && returnValue.get(exit.expr, 0)) {
        last = { slot: returnValue, parent: exit.expr, index: 0 };
      }
      if (last) {
        const operand = last.slot.get(last.parent, last.index);
        if (binaryen.getExpressionType(operand) === unreachable) continue; // the exit is never reached
        const replacement = PURE_LEAVES.has(binaryen.getExpressionId(operand))
          ? m.block(null, [writeBack(), operand], auto)
          : then(operand, writeBack());
        last.slot.set(last.parent, last.index, replacement);
      } else {
        exit.slot.set(exit.parent, exit.index, m.block(null, [writeBack(), exit.slot.get(exit.parent, exit.index)], auto));
      }
      const isCall = exit.id === CallId || exit.id === CallIndirectId || exit.id === CallRefId;
      if (isCall && binaryen.getExpressionType(exit.expr) !== unreachable) {
        // The callee (or a host import) charged the global: pick the new value up.
        exit.slot.set(exit.parent, exit.index, then(exit.slot.get(exit.parent, exit.index), reload()));
      }
    }
  }
  for (let k = plan.sites.length - 1; k >= 0; k--) prepend(plan.sites[k]!, !cached);
  if (cached) {
    const body = getFunctionBody(fn);
    if (binaryen.getExpressionType(body) !== unreachable) setFunctionBody(fn, then(body, writeBack()));
  }
  prepend(plan.entry, true);
}

/** Explains a failed validation: the input itself (e.g. a feature Node 20 lacks), or us. */
function invalidReason(wasm: Uint8Array): string {
  const original = readBinary(wasm, READ_FEATURES);
  try {
    return original.validate()
      ? "instrumented module does not validate (a fuel metering bug; binaryen printed the details)"
      : "module is not valid with the supported WebAssembly features (MVP, mutable globals, sign-ext, " +
          "non-trapping float-to-int, bulk memory, SIMD, reference types, multi-value, tail calls, threads, " +
          "legacy exception handling, extended-const, relaxed SIMD; binaryen printed the details)";
  } finally {
    original.dispose();
  }
}

/** Export, in place of each exported function, a wrapper that starts the call with a full budget. */
function wrapExports(mod: binaryen.Module, taken: Set<string>): void {
  const exports: { name: string; value: string }[] = [];
  for (let i = 0, n = mod.getNumExports(); i < n; i++) {
    const info = binaryen.getExportInfo(mod.getExportByIndex(i));
    if (info.kind === binaryen.ExternalFunction) exports.push({ name: info.name, value: info.value });
  }
  for (const { name, value } of exports) {
    const fn = binaryen.getFunctionInfo(mod.getFunction(value));
    const params = binaryen.expandType(fn.params);
    const wrapper = uniqueName(`__wasmq_entry_${name}`, taken);
    taken.add(wrapper);
    const call = mod.call(value, params.map((type, i) => mod.local.get(i, type)), fn.results);
    mod.addFunction(wrapper, fn.params, fn.results, [], mod.block(null, [mod.global.set(FUEL_GLOBAL, mod.global.get(FUEL_BUDGET_GLOBAL, binaryen.i32)), call], binaryen.auto));
    mod.removeExport(name);
    mod.addFunctionExport(wrapper, name);
  }
}

/**
 * Instruments `wasm` for fuel metering (see the module comment). Throws if the module
 * cannot be read or metered, or already uses the reserved names.
 */
export function instrumentFuel(wasm: Uint8Array): FuelInstrumentResult {
  const savedDebugInfo = binaryen.getDebugInfo();
  let mod: binaryen.Module | undefined;
  try {
    try {
      mod = readBinary(wasm, READ_FEATURES);
    } catch (err) {
      throw new Error(`cannot read module: ${(err as Error).message}`);
    }
    const functions = checkNames(mod);
    const exhausted = uniqueName("__wasmq_fuel_exhausted", functions);

    const plans: FunctionPlan[] = [];
    for (let i = 0, n = mod.getNumFunctions(); i < n; i++) {
      const fn = mod.getFunctionByIndex(i);
      const info = binaryen.getFunctionInfo(fn);
      if (!info.module) plans.push(planFunction(fn, info.name)); // skip imports
    }
    let loopsInstrumented = 0;
    for (const plan of plans) {
      rewriteFunction(mod, plan, exhausted);
      loopsInstrumented += plan.loops;
    }

    mod.addGlobal(FUEL_GLOBAL, binaryen.i32, true, mod.i32.const(INITIAL_FUEL));
    mod.addGlobalExport(FUEL_GLOBAL, FUEL_GLOBAL);
    mod.addGlobal(FUEL_BUDGET_GLOBAL, binaryen.i32, true, mod.i32.const(INITIAL_FUEL));
    mod.addGlobalExport(FUEL_BUDGET_GLOBAL, FUEL_BUDGET_GLOBAL);
    wrapExports(mod, functions);
    mod.addFunctionImport(exhausted, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME, binaryen.none, binaryen.none);

    if (!mod.validate()) throw new Error(invalidReason(wasm));
    // Keep the name section, so traps still show the plugin's function names.
    binaryen.setDebugInfo(true);
    const binary = mod.emitBinary();
    return { binary, functionsInstrumented: plans.length, loopsInstrumented };
  } finally {
    binaryen.setDebugInfo(savedDebugInfo);
    mod?.dispose();
  }
}
