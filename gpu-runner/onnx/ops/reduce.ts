import type { Value } from '../ir/graph.ts';
import { normalizeAxis, range } from '../ir/shape.ts';
import type { Dim } from '../ir/types.ts';
import { cast, div, equal, mul } from './elementwise.ts';
import { constInts, defineOp, emit1, need, attrInt, type InferContext, type VjpContext } from './registry.ts';
import { expand, reshape } from './shape-ops.ts';

function reduce(op: string, x: Value, axes: readonly number[] | undefined, keepdims: boolean): Value {
  const inputs = axes === undefined ? [x] : [x, x.graph.int64s(axes)];
  return emit1(op, inputs, { keepdims: keepdims ? 1 : 0 });
}

/** Sums over `axes` (all axes when omitted). */
export const reduceSum = (x: Value, axes?: readonly number[], keepdims = false) => reduce('ReduceSum', x, axes, keepdims);
export const reduceMean = (x: Value, axes?: readonly number[], keepdims = false) => reduce('ReduceMean', x, axes, keepdims);
export const reduceMax = (x: Value, axes?: readonly number[], keepdims = false) => reduce('ReduceMax', x, axes, keepdims);

function reducedAxes(ctx: Pick<InferContext, 'op' | 'inputs' | 'constant' | 'attrs'>): number[] {
  const x = need(ctx as InferContext, 0);
  const axes = constInts(ctx as InferContext, 1, 'axes');
  if (axes === undefined || axes.length === 0) {
    if (attrInt(ctx.attrs, 'noop_with_empty_axes', 0)) throw new Error(`${ctx.op}: noop_with_empty_axes is not supported`);
    return range(x.shape.length);
  }
  return axes.map((a) => normalizeAxis(ctx.op, a, x.shape.length));
}

function reduceRule(ctx: InferContext) {
  const x = need(ctx, 0);
  const axes = reducedAxes(ctx);
  const keep = attrInt(ctx.attrs, 'keepdims', 1) === 1;
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) shape.push(d);
    else if (keep) shape.push(1);
  });
  return [{ dtype: x.dtype, shape }];
}

function axesOf(c: VjpContext): number[] {
  return reducedAxes({ op: c.node.op, inputs: c.inputs.map((v) => v?.type), attrs: c.attrs, constant: (i) => c.g.constantOf(c.inputs[i]) });
}

/** The cotangent reshaped to keepdims form, so it broadcasts against the input. */
function keptShape(c: VjpContext, v: Value): Value {
  const dims = c.inputs[0]!.staticShape;
  const axes = axesOf(c);
  return reshape(v, dims.map((d, i) => (axes.includes(i) ? 1 : d)));
}

const attrs = { keepdims: 'int', noop_with_empty_axes: 'int' } as const;

defineOp({
  type: 'ReduceSum', attrs, infer: reduceRule,
  vjp: (c) => [expand(keptShape(c, c.dy[0]!), c.inputs[0]!.staticShape), undefined],
});
defineOp({
  type: 'ReduceMean', attrs, infer: reduceRule,
  vjp: (c) => {
    const dims = c.inputs[0]!.staticShape;
    const count = axesOf(c).reduce((n, a) => n * dims[a]!, 1);
    return [expand(div(keptShape(c, c.dy[0]!), count), dims), undefined];
  },
});
defineOp({
  type: 'ReduceMax', attrs, infer: reduceRule,
  // ties share the gradient equally (a valid subgradient, as tinygrad does)
  vjp: (c) => {
    const x = c.inputs[0]!;
    const mask = cast(equal(x, keptShape(c, c.outputs[0]!)), x.dtype);
    const count = reduceSum(mask, axesOf(c), true);
    return [div(mul(mask, keptShape(c, c.dy[0]!)), count), undefined];
  },
});
