import type { Value } from '../ir/graph.ts';
import { broadcastShapes, range, sameShape } from '../ir/shape.ts';
import type { DType } from '../ir/types.ts';
import { dtypeFromOnnx, ONNX_DTYPE, tensor } from '../ir/types.ts';
import { defineOp, emit1, need, type InferContext } from './registry.ts';

/** A value or a JS number (lifted to a scalar constant of the other operand's dtype). */
export type Operand = Value | number;

function lift(x: Operand, like: Value): Value {
  return typeof x === 'number' ? like.graph.scalar(x, like.dtype) : x;
}

function pair(a: Operand, b: Operand): [Value, Value] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error('elementwise op: at least one operand must be a Value');
  const like = (typeof a === 'number' ? b : a) as Value;
  return [lift(a, like), lift(b, like)];
}

function sameDtype(ctx: InferContext): DType {
  const dtypes = ctx.inputs.filter((t) => t !== undefined).map((t) => t!.dtype);
  if (dtypes.some((d) => d !== dtypes[0])) throw new Error(`${ctx.op}: operand dtypes differ (${dtypes.join(', ')})`);
  return dtypes[0]!;
}

function broadcastRule(ctx: InferContext) {
  const dtype = sameDtype(ctx);
  return [{ dtype, shape: broadcastShapes(ctx.op, ...ctx.inputs.map((t) => t!.shape)) }];
}

function compareRule(ctx: InferContext) {
  sameDtype(ctx);
  return [{ dtype: 'bool' as const, shape: broadcastShapes(ctx.op, ...ctx.inputs.map((t) => t!.shape)) }];
}

const unaryRule = (ctx: InferContext) => [need(ctx, 0)];

/**
 * Reduces a broadcast cotangent back to `shape`: sum over the leading axes broadcasting added and over the
 * axes where the operand had size 1, then reshape (the adjoint of broadcasting).
 */
export function sumToShape(dy: Value, shape: readonly number[]): Value {
  const dyShape = dy.staticShape;
  if (sameShape(dyShape, shape)) return dy;
  const lead = dyShape.length - shape.length;
  const axes = range(dyShape.length).filter((i) => i < lead || (shape[i - lead] === 1 && dyShape[i] !== 1));
  let out = dy;
  if (axes.length > 0) out = emit1('ReduceSum', [dy, dy.graph.int64s(axes)], { keepdims: 1 });
  return emit1('Reshape', [out, dy.graph.int64s(shape)]);
}

const binary = (op: string) => (a: Operand, b: Operand) => emit1(op, pair(a, b));

export const add = binary('Add');
export const sub = binary('Sub');
export const mul = binary('Mul');
export const div = binary('Div');
export const pow = binary('Pow');
export const equal = binary('Equal');
export const less = binary('Less');
export const greater = binary('Greater');
export const max = binary('Max');
export const min = binary('Min');

const unary = (op: string) => (x: Value) => emit1(op, [x]);
export const neg = unary('Neg');
export const sqrt = unary('Sqrt');
export const exp = unary('Exp');
export const log = unary('Log');
export const abs = unary('Abs');
export const sign = unary('Sign');
export const reciprocal = unary('Reciprocal');
export const sigmoid = unary('Sigmoid');
export const tanh = unary('Tanh');
export const erf = unary('Erf');
export const sin = unary('Sin');
export const cos = unary('Cos');
export const relu = unary('Relu');
export const identity = unary('Identity');
export const not = unary('Not');
export const or = binary('Or');
export const and = binary('And');

/** Clip-13: clamps to [min, max] (either bound optional), bounds as scalars of x's dtype. */
export function clip(x: Value, min?: number, max?: number): Value {
  const g = x.graph;
  return emit1('Clip', [x, min === undefined ? undefined : g.scalar(min, x.dtype), max === undefined ? undefined : g.scalar(max, x.dtype)]);
}

/** Gelu-20: 'none' is the exact erf form, 'tanh' the approximation. */
export function gelu(x: Value, approximate: 'none' | 'tanh' = 'none'): Value {
  return emit1('Gelu', [x], { approximate });
}

export function cast(x: Value, to: DType): Value {
  if (x.dtype === to) return x;
  return emit1('Cast', [x], { to: ONNX_DTYPE[to] });
}

/** Identity whose output autodiff treats as a constant. */
export function stopGradient(x: Value): Value {
  const [out] = x.graph.addNode('Identity', [x], {}, [x.type], { stopGradient: true });
  return out!;
}


/** Elementwise zeros shaped like `x`. */
export function zerosLike(x: Value): Value {
  return emit1('ConstantOfShape', [x.graph.int64s(x.staticShape)], { value: tensor(x.dtype, [1], [0]) });
}

// ---- definitions: shape rule + VJP, one entry per op ----

defineOp({ type: 'Add', attrs: {}, infer: broadcastRule, vjp: ({ inputs: [a, b], dy: [g] }) => [sumToShape(g!, a!.staticShape), sumToShape(g!, b!.staticShape)] });
defineOp({ type: 'Sub', attrs: {}, infer: broadcastRule, vjp: ({ inputs: [a, b], dy: [g] }) => [sumToShape(g!, a!.staticShape), sumToShape(neg(g!), b!.staticShape)] });
defineOp({ type: 'Mul', attrs: {}, infer: broadcastRule, vjp: ({ inputs: [a, b], dy: [g] }) => [sumToShape(mul(g!, b!), a!.staticShape), sumToShape(mul(g!, a!), b!.staticShape)] });
defineOp({
  type: 'Div', attrs: {}, infer: broadcastRule,
  // d(a/b)/db = -a/b² = -y/b
  vjp: ({ inputs: [a, b], outputs: [y], dy: [g] }) => [sumToShape(div(g!, b!), a!.staticShape), sumToShape(neg(div(mul(g!, y!), b!)), b!.staticShape)],
});
defineOp({
  type: 'Pow', attrs: {}, infer: (ctx) => [{ dtype: need(ctx, 0).dtype, shape: broadcastShapes(ctx.op, need(ctx, 0).shape, need(ctx, 1).shape) }],
  // d(a^b)/da = b·a^(b-1); d(a^b)/db = a^b·ln a (defined for a > 0)
  vjp: ({ inputs: [a, b], outputs: [y], dy: [g] }) => [
    sumToShape(mul(g!, mul(b!, pow(a!, sub(b!, 1)))), a!.staticShape),
    sumToShape(mul(g!, mul(y!, log(a!))), b!.staticShape),
  ],
});
defineOp({
  type: 'Max', attrs: {}, infer: broadcastRule,
  // the gradient goes to the larger operand; ties go to the first (a valid subgradient)
  vjp: ({ inputs: [a, b], dy: [g] }) => {
    const takeA = emit1('Not', [less(a!, b!)]);
    return [sumToShape(where(takeA, g!, 0), a!.staticShape), sumToShape(where(takeA, 0, g!), b!.staticShape)];
  },
});
defineOp({
  type: 'Min', attrs: {}, infer: broadcastRule,
  vjp: ({ inputs: [a, b], dy: [g] }) => {
    const takeA = emit1('Not', [greater(a!, b!)]);
    return [sumToShape(where(takeA, g!, 0), a!.staticShape), sumToShape(where(takeA, 0, g!), b!.staticShape)];
  },
});
for (const op of ['Equal', 'Less', 'Greater']) defineOp({ type: op, attrs: {}, infer: compareRule, nondifferentiable: true });
defineOp({ type: 'Not', attrs: {}, infer: unaryRule, nondifferentiable: true });
for (const op of ['Or', 'And']) {
  defineOp({
    type: op, attrs: {}, nondifferentiable: true,
    infer: (ctx) => {
      if (ctx.inputs.some((t) => t?.dtype !== 'bool')) throw new Error(`${op}: operands must be bool`);
      return [{ dtype: 'bool', shape: broadcastShapes(op, ...ctx.inputs.map((t) => t!.shape)) }];
    },
  });
}
defineOp({
  type: 'Clip', attrs: {},
  infer: (ctx) => {
    for (const i of [1, 2]) if (ctx.inputs[i] && ctx.inputs[i]!.shape.length !== 0) throw new Error('Clip: bounds must be scalars');
    return [need(ctx, 0)];
  },
  // the gradient passes where x lies inside [min, max] (bounds are constants here: no gradient to them)
  vjp: ({ inputs: [x, lo, hi], dy: [g] }) => {
    let outside: Value | undefined;
    if (lo) outside = less(x!, lo);
    if (hi) outside = outside ? or(outside, greater(x!, hi)) : greater(x!, hi);
    return [outside ? where(outside, 0, g!) : g, undefined, undefined];
  },
});
defineOp({ type: 'Sign', attrs: {}, infer: unaryRule, vjp: ({ inputs: [x] }) => [zerosLike(x!)] });

defineOp({ type: 'Neg', attrs: {}, infer: unaryRule, vjp: ({ dy: [g] }) => [neg(g!)] });
defineOp({ type: 'Identity', attrs: {}, infer: unaryRule, vjp: ({ dy: [g] }) => [g] });
defineOp({ type: 'Sqrt', attrs: {}, infer: unaryRule, vjp: ({ outputs: [y], dy: [g] }) => [div(g!, mul(y!, 2))] });
defineOp({ type: 'Exp', attrs: {}, infer: unaryRule, vjp: ({ outputs: [y], dy: [g] }) => [mul(g!, y!)] });
defineOp({ type: 'Log', attrs: {}, infer: unaryRule, vjp: ({ inputs: [x], dy: [g] }) => [div(g!, x!)] });
defineOp({ type: 'Abs', attrs: {}, infer: unaryRule, vjp: ({ inputs: [x], dy: [g] }) => [mul(g!, sign(x!))] });
defineOp({ type: 'Reciprocal', attrs: {}, infer: unaryRule, vjp: ({ outputs: [y], dy: [g] }) => [neg(mul(g!, mul(y!, y!)))] });
defineOp({ type: 'Sigmoid', attrs: {}, infer: unaryRule, vjp: ({ outputs: [y], dy: [g] }) => [mul(g!, mul(y!, sub(1, y!)))] });
defineOp({ type: 'Tanh', attrs: {}, infer: unaryRule, vjp: ({ outputs: [y], dy: [g] }) => [mul(g!, sub(1, mul(y!, y!)))] });
defineOp({
  type: 'Erf', attrs: {}, infer: unaryRule,
  vjp: ({ inputs: [x], dy: [g] }) => [mul(g!, mul(exp(neg(mul(x!, x!))), TWO_OVER_SQRT_PI))],
});
defineOp({ type: 'Sin', attrs: {}, infer: unaryRule, vjp: ({ inputs: [x], dy: [g] }) => [mul(g!, cos(x!))] });
defineOp({ type: 'Cos', attrs: {}, infer: unaryRule, vjp: ({ inputs: [x], dy: [g] }) => [neg(mul(g!, sin(x!)))] });
defineOp({ type: 'Relu', attrs: {}, infer: unaryRule, vjp: ({ inputs: [x], dy: [g] }) => [where(greater(x!, 0), g!, 0)] });
defineOp({
  type: 'Gelu', attrs: { approximate: 'string' }, infer: unaryRule,
  vjp: ({ inputs: [x], dy: [g], attrs }) => [mul(g!, attrs.approximate === 'tanh' ? geluTanhDerivative(x!) : geluExactDerivative(x!))],
});
defineOp({
  type: 'Cast', attrs: { to: 'int' }, infer: (ctx) => [{ dtype: dtypeFromOnnx(ctx.attrs.to as number), shape: need(ctx, 0).shape }],
  vjp: ({ inputs: [x], dy: [g] }) => [cast(g!, x!.dtype)],
});

defineOp({
  type: 'Where', attrs: {},
  infer: (ctx) => {
    if (need(ctx, 0).dtype !== 'bool') throw new Error('Where: condition must be bool');
    if (need(ctx, 1).dtype !== need(ctx, 2).dtype) throw new Error('Where: branch dtypes differ');
    return [{ dtype: need(ctx, 1).dtype, shape: broadcastShapes('Where', need(ctx, 0).shape, need(ctx, 1).shape, need(ctx, 2).shape) }];
  },
  vjp: ({ inputs: [c, a, b], dy: [g] }) => [undefined, sumToShape(where(c!, g!, 0), a!.staticShape), sumToShape(where(c!, 0, g!), b!.staticShape)],
});

export function where(cond: Value, a: Operand, b: Operand): Value {
  const like = typeof a === 'number' ? (b as Value) : a;
  return emit1('Where', [cond, lift(a, like), lift(b, like)]);
}

/** 2/√π, the scale of erf's derivative. */
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
/** 1/√(2π), the standard normal density at 0. */
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
/** √(2/π) and 0.044715: the constants of Gelu's tanh approximation (Hendrycks & Gimpel 2016, §2). */
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_TANH_CUBIC = 0.044715;

// d/dx x·Φ(x) = Φ(x) + x·φ(x)
function geluExactDerivative(x: Value): Value {
  const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
  const pdf = mul(exp(mul(mul(x, x), -0.5)), INV_SQRT_2PI);
  return add(cdf, mul(x, pdf));
}

// y = ½x(1 + tanh u), u = √(2/π)(x + c x³); dy/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3c x²)
function geluTanhDerivative(x: Value): Value {
  const x2 = mul(x, x);
  const t = tanh(mul(mul(x, add(mul(x2, GELU_TANH_CUBIC), 1)), SQRT_2_OVER_PI));
  const du = mul(add(mul(x2, 3 * GELU_TANH_CUBIC), 1), SQRT_2_OVER_PI);
  return add(mul(add(t, 1), 0.5), mul(mul(mul(x, 0.5), sub(1, mul(t, t))), du));
}
