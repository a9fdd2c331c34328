/**
 * CPU budget ("fuel") metering for Wasm plugins, by rewriting the binary at load time.
 *
 * Timers cannot interrupt synchronous Wasm on Node's main thread, so the budget is
 * enforced inside the module: `instrumentFuel` adds a mutable i32 global
 * `__wasmq_fuel` (exported under that name) and charges it on the path the code
 * actually takes (fuel-plan.ts computes where and how much):
 *
 *   - at the entry of every defined function (AssemblyScript runtime included), except
 *     "static" functions, which are charged at their call sites (below),
 *   - at the top of every loop body, i.e. once per iteration, whatever branch
 *     (`br`, `br_if`, `br_table`, `br_on_*`) re-enters the loop,
 *     (a `while`-shaped loop whose only way round is the `br` that ends an arm pays
 *     its header, and the arms that arm sits in, with that arm instead, and its first
 *     header and those arms before the loop: fuel-loop-merge.ts),
 *   - at the entry of every legacy-EH `catch_all` body (see "Exceptions" below),
 *   - at the entry of an `if` arm, for what that arm costs beyond its sibling, when that
 *     is more than MAX_FOLDED_ARM (fuel-plan.ts); a smaller difference is charged with the
 *     `if`, whichever arm runs.
 *
 * A checked charge is `fuel -= COST; if (fuel < 0) { fuel = -1; call $fuel_exhausted;
 * unreachable }`, all inlined: the import `"wasmq" "fuel_exhausted"` (the host throws
 * from it) is called only once the budget is exhausted, and `unreachable` traps should
 * it return. Function entries, loop headers and catch_all bodies are checked. An arm's
 * charge is a bare subtract: every path out of an arm reaches a check (the next loop
 * header, a callee's entry, a host import, which refuses to work for a negative
 * counter, or the end of the call from the host: each exported function is wrapped,
 * and the wrapper traps when the call returns with the counter below zero). So a
 * plugin never runs more than its budget plus one loop-free stretch of one function
 * (with the static functions it calls), and a call that needed more than its budget
 * always ends in the "fuel" trap: a budget of exactly the fuel a call uses suffices,
 * one less does not.
 *
 * Cost model — fuel ≈ Wasm instructions executed. A site's COST is static: the number
 * of Binaryen IR expressions that belong to it, not counting structural nodes that
 * execute no instruction (`block`, `loop`, `nop`, `pop`), nor what sits in a nested
 * loop (charged per iteration of that loop) or a nested `if` arm (charged when taken).
 * An `if` costs its condition, itself and the arm taken; the cheaper arm's cost is
 * charged with the `if` (both arms cost at least that much) and only the difference
 * inside the dearer arm, so an arm no dearer than its sibling carries no charge. When
 * that difference is at most MAX_FOLDED_ARM (16), the dearer arm is charged with the
 * `if` whichever arm runs (at most 16 units more than the arm taken). A site
 * is charged in full on entry, even if an early `return` or `br` leaves it: one unit is
 * roughly one executed Wasm instruction, never fewer. Calls count 1 at the call site; a
 * normal callee is charged at its own entry. A static function — no loops, no
 * exception handling, no indirect calls, only calls to other static functions, and not
 * reachable from outside the module's direct calls (not exported, in a table,
 * `ref.func`'d or the start function) — runs no fuel code: its caller is charged, with a
 * bare subtract right before each call, the callee's longest path (the dearer arm of
 * every `if`, plus its callees), at most MAX_STATIC_COST. The count is deterministic:
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
 *     before every call to a non-static function, `return`, `throw` and the end of the
 *     body (after their operands are evaluated, so the callee sees the exact value), and
 *     reloaded after each such call (the callee, or a host import, may have charged the
 *     global). A call to a static function needs neither.
 *
 * The global starts at 0x7fffffff so the module's start function (e.g. AssemblyScript's
 * static initialisers) can run at instantiation; the host sets the budget global once,
 * every exported function's wrapper copies it into `__wasmq_fuel` on entry, and the
 * host reads the remainder afterwards (fuel used = budget - value). After a normal return
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
 * (exnref, which Node 20's engine does not support). The export wrapper's final check
 * turns "the call returned but the global is < 0" into the exhaustion trap.
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
 *
 * The host's own charges for an import's work (host-calls.ts) go through an export the
 * instrumenter adds, FUEL_TAKE_EXPORT (fuel-names.ts; addTakeExport below), not through
 * the global's JS accessor.
 *
 * Until 2026-12 both arms of an `if` were charged on every pass and every function paid
 * its own entry: a loop body with a rarely taken branch cost its whole text per
 * iteration (the JSON string scan: 381 fuel per byte, now ~20).
 */
import binaryen from "binaryen";
import { addVar, CallId, CallIndirectId, CallRefId, callNumOperands, callTarget, getFunctionBody, PURE_LEAVES, readBinary, ReturnId, returnValue, setFunctionBody, type Ref, type Slot } from "./fuel-ir.js";
import { MAX_COST, pinnedFunctions, planFunction, settlePlans, type Exit, type FunctionPlan, type Site } from "./fuel-plan.js";

export { FUEL_GLOBAL, FUEL_BUDGET_GLOBAL, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME, FUEL_TAKE_EXPORT } from "./fuel-names.js";
import { FUEL_GLOBAL, FUEL_BUDGET_GLOBAL, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME, FUEL_NEUTRAL_IMPORTS, FUEL_TAKE_EXPORT } from "./fuel-names.js";

export interface FuelInstrumentResult {
  /** The instrumented module. */
  binary: Uint8Array;
  /** Defined functions that got an entry check. */
  functionsInstrumented: number;
  /** Static functions: no fuel code of their own, charged at their call sites. */
  functionsChargedAtCallSites: number;
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
/**
 * Value the global is pinned to on exhaustion. Pinning (rather than leaving the
 * decremented value) keeps the global within [-1 - 2 × MAX_COST, 0x7fffffff] (one
 * function's unchecked charges, at most MAX_COST in all, then one checked charge) even
 * if a `catch_all` handler catches the host's error and gets charged again: it can
 * never wrap around to a large positive budget.
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
    if (exported === FUEL_GLOBAL || exported === FUEL_BUDGET_GLOBAL || exported === FUEL_TAKE_EXPORT) throw reservedNameError(`an export "${exported}"`);
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
    if (site.kind === "arm" && plan.uncheckedArms && !site.checked) {
      // A bare subtract: the next check on every path out of the arm sees it (fuel.ts, module comment).
      return cached ? m.local.set(counter, next) : m.global.set(fuel, next);
    }
    // "global" shape: global.set $fuel (local.tee $t next); "cached": local.set $f next.
    return m.block(null, [cached ? m.local.set(counter, next) : m.global.set(fuel, m.local.tee(counter, next, i32)), trapIfNegative()]);
  };
  const prepend = (site: Site, fromGlobal: boolean): void => {
    if (site.kind === "arm" && site.cost === 0) return; // no dearer than its sibling: charged with the if
    if (site.free) return; // a loop header paid by its back-edge arm and the code before the loop (fuel-loop-merge.ts)
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

  /** A static callee's charge, right before the call (before its operands are evaluated). */
  const chargeStaticCall = (exit: Exit): void => {
    if (exit.staticCost === 0) return; // a neutral import: the call itself is counted in its site
    const next = m.i32.sub(cached ? getCounter() : m.global.get(fuel, i32), cost(exit.staticCost!));
    // Checked only in a function too big to rule out wrap-around (see FunctionPlan.uncheckedArms).
    const charge = !plan.uncheckedArms
      ? m.block(null, [cached ? m.local.set(counter, next) : m.global.set(fuel, m.local.tee(counter, next, i32)), trapIfNegative()])
      : cached
        ? m.local.set(counter, next)
        : m.global.set(fuel, next);
    exit.slot.set(exit.parent, exit.index, m.block(null, [charge, exit.slot.get(exit.parent, exit.index)], auto));
  };
  // Children before parents (reverse pre-order), re-reading each slot, so nested
  // rewrites compose: an inner call's wrapper is what the outer one wraps.
  for (let k = plan.exits.length - 1; k >= 0; k--) {
    const exit = plan.exits[k]!;
    // A static callee never touches the global: no write-back, no reload (unless it is a return_call).
    if (exit.staticCost !== undefined && !exit.isReturn) {
      chargeStaticCall(exit);
      continue;
    }
    if (cached) {
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
    if (exit.staticCost !== undefined) chargeStaticCall(exit);
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

/**
 * Export, in place of each exported function, a wrapper that starts the call with a full
 * budget and traps as "fuel" if the call comes back with the counter below zero (an
 * arm's unchecked charge taken on the way out: see the module comment).
 */
function wrapExports(mod: binaryen.Module, taken: Set<string>, exhausted: string): void {
  const { i32, none } = binaryen;
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
    const overdrawn = mod.if(
      mod.i32.lt_s(mod.global.get(FUEL_GLOBAL, i32), mod.i32.const(0)),
      mod.block(null, [mod.global.set(FUEL_GLOBAL, mod.i32.const(EXHAUSTED)), mod.call(exhausted, [], none), mod.unreachable()]),
    );
    const start = mod.global.set(FUEL_GLOBAL, mod.global.get(FUEL_BUDGET_GLOBAL, i32));
    const result = params.length; // the local after the parameters
    const body =
      fn.results === none
        ? mod.block(null, [start, call, overdrawn], none)
        : mod.block(null, [start, mod.local.set(result, call), overdrawn, mod.local.get(result, fn.results)], fn.results);
    mod.addFunction(wrapper, fn.params, fn.results, fn.results === none ? [] : [fn.results], body);
    mod.removeExport(name);
    mod.addFunctionExport(wrapper, name);
  }
}

/**
 * Export FUEL_TAKE_EXPORT (fuel-names.ts): the host's charge for an import's work,
 * `left = fuel - amount`, computed in f64 so that no amount and no (negative)
 * counter can wrap around; below zero (or NaN) pins the global to EXHAUSTED and
 * answers -1, else stores and answers `left`. Exported after wrapExports: it must
 * not reset the budget.
 */
function addTakeExport(mod: binaryen.Module, taken: Set<string>): void {
  const { i32, f64 } = binaryen;
  const name = uniqueName("__wasmq_fuel_take", taken);
  taken.add(name);
  const amount = 0;
  const left = 1;
  const body = mod.block(null, [
    mod.local.set(left, mod.f64.sub(mod.f64.convert_s.i32(mod.global.get(FUEL_GLOBAL, i32)), mod.local.get(amount, f64))),
    mod.if(
      mod.f64.ge(mod.local.get(left, f64), mod.f64.const(0)),
      mod.global.set(FUEL_GLOBAL, mod.i32.trunc_s.f64(mod.local.get(left, f64))),
      mod.global.set(FUEL_GLOBAL, mod.i32.const(EXHAUSTED)),
    ),
    mod.global.get(FUEL_GLOBAL, i32),
  ], i32);
  mod.addFunction(name, f64, i32, [f64], body);
  mod.addFunctionExport(name, FUEL_TAKE_EXPORT);
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
    const neutral: string[] = [];
    for (let i = 0, n = mod.getNumFunctions(); i < n; i++) {
      const fn = mod.getFunctionByIndex(i);
      const info = binaryen.getFunctionInfo(fn);
      if (!info.module) plans.push(planFunction(fn, info.name));
      else if (FUEL_NEUTRAL_IMPORTS.includes(`${info.module}.${info.base}`)) neutral.push(info.name);
    }
    const staticCost = settlePlans(plans, pinnedFunctions(mod, plans), neutral);
    const chargedAtCallSites = staticCost.size - neutral.length;
    let loopsInstrumented = 0;
    for (const plan of plans) {
      if (staticCost.has(plan.name)) continue; // charged at its call sites
      rewriteFunction(mod, plan, exhausted);
      loopsInstrumented += plan.loops;
    }

    mod.addGlobal(FUEL_GLOBAL, binaryen.i32, true, mod.i32.const(INITIAL_FUEL));
    mod.addGlobalExport(FUEL_GLOBAL, FUEL_GLOBAL);
    mod.addGlobal(FUEL_BUDGET_GLOBAL, binaryen.i32, true, mod.i32.const(INITIAL_FUEL));
    mod.addGlobalExport(FUEL_BUDGET_GLOBAL, FUEL_BUDGET_GLOBAL);
    wrapExports(mod, functions, exhausted);
    addTakeExport(mod, functions);
    mod.addFunctionImport(exhausted, FUEL_IMPORT_MODULE, FUEL_IMPORT_NAME, binaryen.none, binaryen.none);

    if (!mod.validate()) throw new Error(invalidReason(wasm));
    // Keep the name section, so traps still show the plugin's function names.
    binaryen.setDebugInfo(true);
    const binary = mod.emitBinary();
    return { binary, functionsInstrumented: plans.length - chargedAtCallSites, functionsChargedAtCallSites: chargedAtCallSites, loopsInstrumented };
  } finally {
    binaryen.setDebugInfo(savedDebugInfo);
    mod?.dispose();
  }
}
