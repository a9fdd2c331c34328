/**
 * Binaryen IR plumbing for fuel metering (fuel.ts): which child positions each
 * expression kind has (so a pass can read and replace any child through binaryen.js),
 * which kinds execute no instruction of their own, and the ids the planner and the
 * rewriter look for.
 */
import binaryen from "binaryen";

export type Ref = number;
/** binaryen.js 132 takes the features as readBinary's optional 2nd argument (its .d.ts names a missing readBinaryWithFeatures). */
export const readBinary = binaryen.readBinary as (data: Uint8Array, features?: binaryen.Features) => binaryen.Module;
export type Accessor = (expr: Ref, ...args: number[]) => Ref;
/** binaryen.js's class-style expression wrappers (`binaryen.Loop.getBody(expr)` etc.), untyped in its .d.ts. */
const classes = binaryen as unknown as Record<string, Record<string, Accessor> | undefined>;
const raw = binaryen as unknown as Record<string, ((...args: number[]) => number) | undefined>;

export function accessor(cls: string, name: string): Accessor {
  const fn = classes[cls]?.[name];
  if (typeof fn !== "function") throw new Error(`fuel: binaryen.${cls}.${name} is missing (unsupported binaryen version)`);
  return fn;
}

export function rawFn(name: string): (...args: number[]) => number {
  const fn = raw[name];
  if (typeof fn !== "function") throw new Error(`fuel: binaryen.${name} is missing (unsupported binaryen version)`);
  return fn;
}

export function expressionId(cls: string): number {
  return rawFn(`_Binaryen${cls}Id`)();
}

export const addVar = rawFn("_BinaryenFunctionAddVar");

/** One child position of a parent: read and replace the child at `index` (list slots) or the only one. */
export interface Slot {
  get(parent: Ref, index: number): Ref;
  set(parent: Ref, index: number, child: Ref): void;
}

/** Child positions of one expression kind: single getters, then `[count, at]` lists. */
export interface Shape {
  singles: Slot[];
  lists: { count: Accessor; slot: Slot }[];
}

export function shape(cls: string, singles: string[], lists: string[] = []): Shape {
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

export const LEAF: Shape = { singles: [], lists: [] };

/** Child positions of every expression kind binaryen.js can take apart, by expression id. */
export const SHAPES = new Map<number, Shape>();
/** Kinds that do not execute an instruction of their own. */
export const STRUCTURAL = new Set<number>();

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

export const LoopId = expressionId("Loop");
export const TryId = expressionId("Try");
export const RethrowId = expressionId("Rethrow");
export const CallId = expressionId("Call");
export const CallIndirectId = expressionId("CallIndirect");
export const CallRefId = expressionId("CallRef");
export const ReturnId = expressionId("Return");
export const ThrowId = expressionId("Throw");
/** Leaves that neither read nor change the cached counter: a write-back can go before them. */
export const PURE_LEAVES = new Set(["LocalGet", "GlobalGet", "Const", "RefNull", "RefFunc"].map(expressionId));

export const loopBody: Slot = shape("Loop", ["Body"]).singles[0]!;
export const getFunctionBody = accessor("Function", "getBody");
export const setFunctionBody = accessor("Function", "setBody");
export const functionBody: Slot = { get: (fn) => getFunctionBody(fn), set: (fn, _i, body) => void setFunctionBody(fn, body) };
export const tryHasCatchAll = accessor("Try", "hasCatchAll");
export const tryNumCatchBodies = accessor("Try", "getNumCatchBodies");
export const callNumOperands = new Map([CallId, CallIndirectId, CallRefId, ThrowId].map((id) => [id, SHAPES.get(id)!.lists[0]!] as const));
export const returnValue = SHAPES.get(ReturnId)!.singles[0]!;
/** call_indirect / call_ref evaluate their target after the operands. */
export const callTarget = new Map([CallIndirectId, CallRefId].map((id) => [id, SHAPES.get(id)!.singles[0]!] as const));

/** Static cost of a subtree binaryen.js cannot take apart; refuses it if it hides a loop. */
export function opaqueCost(expr: Ref, fnName: string): number {
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

export const IfId = expressionId("If");
export const BlockId = expressionId("Block");
export const BreakId = expressionId("Break");
export const SwitchId = expressionId("Switch");
export const BrOnId = expressionId("BrOn");
export const RefFuncId = expressionId("RefFunc");
const ifShape = SHAPES.get(IfId)!.singles;
/** The three children of an `if`. */
export const ifSlots = { condition: ifShape[0]!, ifTrue: ifShape[1]!, ifFalse: ifShape[2]! };
