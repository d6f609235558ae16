import type { Value } from '../ir/graph.ts';
import { normalizeAxis, range } from '../ir/shape.ts';
import { cast, exp, mul, sub, sumToShape } from './elementwise.ts';
import { attrInt, defineOp, emit, emit1, need } from './registry.ts';
import { reduceMean, reduceSum } from './reduce.ts';

export function softmax(x: Value, axis = -1): Value {
  return emit1('Softmax', [x], { axis });
}

export function logSoftmax(x: Value, axis = -1): Value {
  return emit1('LogSoftmax', [x], { axis });
}

/** Default ε of torch.nn.LayerNorm and ONNX LayerNormalization. */
export const LAYER_NORM_EPSILON = 1e-5;

/** LayerNormalization-17 over axes axis…rank-1; the node also outputs Mean and InvStdDev, which the VJP reuses. */
export function layerNorm(x: Value, scale: Value, bias?: Value, o: { axis?: number; epsilon?: number } = {}): Value {
  const [y] = emit('LayerNormalization', bias ? [x, scale, bias] : [x, scale], { axis: o.axis ?? -1, epsilon: o.epsilon ?? LAYER_NORM_EPSILON });
  return y!;
}

defineOp({
  type: 'Softmax', attrs: { axis: 'int' },
  infer: (ctx) => [need(ctx, 0)],
  // dX = Y ⊙ (dY − Σ dY⊙Y)
  vjp: ({ outputs: [y], dy: [g], attrs }) => {
    const axis = normalizeAxis('Softmax', attrInt(attrs, 'axis', -1), y!.rank);
    return [mul(y!, sub(g!, reduceSum(mul(g!, y!), [axis], true)))];
  },
});

defineOp({
  type: 'LogSoftmax', attrs: { axis: 'int' },
  infer: (ctx) => [need(ctx, 0)],
  // dX = dY − softmax(X)·Σ dY
  vjp: ({ outputs: [y], dy: [g], attrs }) => {
    const axis = normalizeAxis('LogSoftmax', attrInt(attrs, 'axis', -1), y!.rank);
    return [sub(g!, mul(exp(y!), reduceSum(g!, [axis], true)))];
  },
});

defineOp({
  type: 'LayerNormalization', attrs: { axis: 'int', epsilon: 'float', stash_type: 'int' },
  infer: (ctx) => {
    const x = need(ctx, 0);
    const axis = normalizeAxis('LayerNormalization', attrInt(ctx.attrs, 'axis', -1), x.shape.length);
    if (attrInt(ctx.attrs, 'stash_type', 1) !== 1) throw new Error('LayerNormalization: only stash_type = 1 (float32 statistics) is supported');
    // Mean and InvStdDev have the stash type (float32), whatever X's type (onnxruntime enforces it)
    const stats = { dtype: 'float32' as const, shape: x.shape.map((d, i) => (i < axis ? d : 1)) };
    return [x, stats, stats];
  },
  // x̂ = (x − μ)·σ⁻¹ from the saved outputs; dX = σ⁻¹·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂)) over the normalized axes
  vjp: ({ inputs: [x, scale, bias], outputs: [, mean, invStd], dy: [g, dMean, dInvStd], attrs }) => {
    if (dMean || dInvStd) throw new Error('LayerNormalization: no gradient through the Mean/InvStdDev outputs (only Y is differentiable)');
    const axis = normalizeAxis('LayerNormalization', attrInt(attrs, 'axis', -1), x!.rank);
    const axes = range(x!.rank).filter((i) => i >= axis);
    const mu = cast(mean!, x!.dtype);
    const sigmaInv = cast(invStd!, x!.dtype);
    const xhat = mul(sub(x!, mu), sigmaInv);
    const dxhat = mul(g!, scale!);
    const dx = mul(sigmaInv, sub(sub(dxhat, reduceMean(dxhat, axes, true)), mul(xhat, reduceMean(mul(dxhat, xhat), axes, true))));
    return [dx, sumToShape(mul(g!, xhat), scale!.staticShape), bias ? sumToShape(g!, bias.staticShape) : undefined];
  },
});
