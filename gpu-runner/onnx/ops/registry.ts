import type { Attrs, Graph, Node } from '../ir/graph.ts';
import { Value } from '../ir/graph.ts';
import type { HostTensor, TensorType } from '../ir/types.ts';

/** ONNX attribute types; JS cannot tell 2.0 from 2, so each op declares its attributes' kinds here. */
export type AttrKind = 'int' | 'float' | 'ints' | 'floats' | 'string' | 'tensor';

export interface InferContext {
  readonly op: string;
  readonly inputs: readonly (TensorType | undefined)[];
  readonly attrs: Attrs;
  /** Constant data of input i when it is a known initializer (shape vectors, axes, scales). */
  constant(i: number): HostTensor | undefined;
}

export interface VjpContext {
  readonly g: Graph;
  readonly node: Node;
  readonly attrs: Attrs;
  readonly inputs: readonly (Value | undefined)[];
  readonly outputs: readonly Value[];
  /** Cotangents of the outputs; undefined where no gradient reaches an output. */
  readonly dy: readonly (Value | undefined)[];
}

/** Returns the cotangent of each input (undefined: none, e.g. for index or shape inputs). */
export type VjpRule = (ctx: VjpContext) => readonly (Value | undefined)[];

/**
 * One ONNX operator as the engine knows it: its attribute kinds, its shape rule and its VJP rule, side by side
 * (JAX's primitive definitions are the model: adding an op is one entry in one place).
 */
export interface OpDef {
  readonly type: string;
  readonly attrs: Readonly<Record<string, AttrKind>>;
  readonly infer: (ctx: InferContext) => TensorType[];
  /** Absent: autodiff fails naming the op. */
  readonly vjp?: VjpRule;
  /** Outputs are integers/booleans: no gradient flows through the op at all. */
  readonly nondifferentiable?: boolean;
}

const TABLE = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  if (TABLE.has(def.type)) throw new Error(`op ${def.type} defined twice`);
  TABLE.set(def.type, def);
  return def;
}

export function opDef(type: string): OpDef {
  const def = TABLE.get(type);
  if (!def) throw new Error(`op '${type}' is not in the engine's op table`);
  return def;
}

export function knownOps(): string[] {
  return [...TABLE.keys()].sort();
}

/** Checks attribute names and JS types against the op table. */
export function checkAttrs(def: OpDef, attrs: Attrs): void {
  for (const [name, value] of Object.entries(attrs)) {
    const kind = def.attrs[name];
    if (!kind) throw new Error(`${def.type}: unknown attribute '${name}'`);
    const ok =
      kind === 'int' ? Number.isInteger(value) :
      kind === 'float' ? typeof value === 'number' :
      kind === 'ints' ? Array.isArray(value) && value.every((x) => Number.isInteger(x)) :
      kind === 'floats' ? Array.isArray(value) && value.every((x) => typeof x === 'number') :
      kind === 'string' ? typeof value === 'string' :
      typeof value === 'object' && !Array.isArray(value) && 'data' in (value as object);
    if (!ok) throw new Error(`${def.type}: attribute '${name}' must be ${kind}, got ${JSON.stringify(value)}`);
  }
}

/** Rounds FLOAT attributes to float32, as ONNX stores them, so a written-then-read graph is identical. */
export function storableAttrs(def: OpDef, attrs: Attrs): Attrs {
  const out: Record<string, Attrs[string]> = {};
  for (const [name, value] of Object.entries(attrs)) {
    const kind = def.attrs[name];
    out[name] = kind === 'float' ? Math.fround(value as number) : kind === 'floats' ? (value as number[]).map(Math.fround) : value;
  }
  return out;
}

export function inferTypes(g: Graph, def: OpDef, inputs: readonly (Value | undefined)[], attrs: Attrs): TensorType[] {
  return def.infer({
    op: def.type,
    inputs: inputs.map((v) => v?.type),
    attrs,
    constant: (i) => g.constantOf(inputs[i]),
  });
}

/** Emits one node of a table op into the graph of its first input; returns its outputs. */
export function emit(op: string, inputs: readonly (Value | undefined)[], attrs: Attrs = {}, options: { stopGradient?: boolean } = {}): Value[] {
  const first = inputs.find((v): v is Value => v instanceof Value);
  if (!first) throw new Error(`${op}: needs at least one input value`);
  const def = opDef(op);
  checkAttrs(def, attrs);
  const stored = storableAttrs(def, attrs);
  const types = inferTypes(first.graph, def, inputs, stored);
  return first.graph.addNode(op, inputs, stored, types, options);
}

/** Emits a single-output op. */
export function emit1(op: string, inputs: readonly (Value | undefined)[], attrs: Attrs = {}): Value {
  const out = emit(op, inputs, attrs)[0];
  if (!out) throw new Error(`${op}: produced no output`);
  return out;
}

export function attrInt(attrs: Attrs, name: string, fallback: number): number {
  const v = attrs[name];
  return typeof v === 'number' ? v : fallback;
}
export function attrFloat(attrs: Attrs, name: string, fallback: number): number {
  const v = attrs[name];
  return typeof v === 'number' ? v : fallback;
}
export function attrInts(attrs: Attrs, name: string): number[] | undefined {
  const v = attrs[name];
  return Array.isArray(v) ? [...(v as number[])] : undefined;
}
export function attrString(attrs: Attrs, name: string, fallback: string): string {
  const v = attrs[name];
  return typeof v === 'string' ? v : fallback;
}

/** Reads an int64 constant input as numbers, or fails naming the op (shape-like inputs must be constants). */
export function constInts(ctx: InferContext, i: number, what: string): number[] | undefined {
  if (ctx.inputs[i] === undefined) return undefined;
  const t = ctx.constant(i);
  if (!t) throw new Error(`${ctx.op}: input ${i} (${what}) must be a constant initializer for shape inference`);
  return Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
}

export function need(ctx: InferContext, i: number): TensorType {
  const t = ctx.inputs[i];
  if (!t) throw new Error(`${ctx.op}: input ${i} is required`);
  return t;
}
