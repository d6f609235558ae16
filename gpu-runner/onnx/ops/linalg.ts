import type { Value } from '../ir/graph.ts';
import { broadcastShapes } from '../ir/shape.ts';
import type { Dim } from '../ir/types.ts';
import { shapeToString } from '../ir/types.ts';
import { mul, sumToShape } from './elementwise.ts';
import { attrFloat, attrInt, defineOp, emit1, need } from './registry.ts';
import { reshape, transpose, transposeLast2 } from './shape-ops.ts';

export function matmul(a: Value, b: Value): Value {
  return emit1('MatMul', [a, b]);
}

/** Gemm: alpha·op(A)·op(B) + beta·C with op = transpose when the flag is set. */
export function gemm(a: Value, b: Value, c?: Value, o: { alpha?: number; beta?: number; transA?: boolean; transB?: boolean } = {}): Value {
  const attrs: Record<string, number> = {};
  if (o.alpha !== undefined) attrs.alpha = o.alpha;
  if (o.beta !== undefined) attrs.beta = o.beta;
  if (o.transA) attrs.transA = 1;
  if (o.transB) attrs.transB = 1;
  return emit1('Gemm', c ? [a, b, c] : [a, b], attrs);
}

defineOp({
  type: 'MatMul', attrs: {},
  infer: (ctx) => {
    const a = need(ctx, 0);
    const b = need(ctx, 1);
    if (a.dtype !== b.dtype) throw new Error('MatMul: dtypes differ');
    const as = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
    const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
    const k1 = as[as.length - 1];
    const k2 = bs[bs.length - 2];
    if (k1 !== k2) throw new Error(`MatMul: inner dims differ, ${shapeToString(a.shape)} × ${shapeToString(b.shape)}`);
    const batch = broadcastShapes('MatMul', as.slice(0, -2), bs.slice(0, -2));
    const shape: Dim[] = [...batch];
    if (a.shape.length !== 1) shape.push(as[as.length - 2]!);
    if (b.shape.length !== 1) shape.push(bs[bs.length - 1]!);
    return [{ dtype: a.dtype, shape }];
  },
  // dA = dY·Bᵀ, dB = Aᵀ·dY, each summed over the batch axes broadcasting added
  vjp: ({ inputs: [a, b], dy: [g] }) => {
    if (a!.rank < 2 || b!.rank < 2) throw new Error('MatMul: gradient needs operands of rank ≥ 2');
    const da = sumToShape(matmul(g!, transposeLast2(b!)), a!.staticShape);
    let db: Value;
    if (b!.rank === 2 && a!.rank > 2) {
      // fold the batch into rows: one (K×M·batch)·(M·batch×N) product instead of a batch of products plus a sum
      const [k, n] = b!.staticShape as [number, number];
      db = matmul(transpose(reshape(a!, [-1, k]), [1, 0]), reshape(g!, [-1, n]));
    } else db = sumToShape(matmul(transposeLast2(a!), g!), b!.staticShape);
    return [da, db];
  },
});

/**
 * Aᵀ of a 2-D value as a separate copy that onnxruntime does not fold back into the product: a Transpose feeding Gemm
 * or MatMul directly is fused into a transposed-A GEMM, which MLAS runs 1.1–1.4× slower than the plain one (CPU time
 * for dW = dYᵀ·X of SD's feed-forward shapes), while the copy of an activation-sized operand costs a few percent of
 * that product. The size-1 axis keeps the Transpose from being a plain last-two-axes swap.
 */
function rowMajorTranspose(a: Value): Value {
  const [rows, cols] = a.staticShape as [number, number];
  return reshape(transpose(reshape(a, [rows, cols, 1]), [1, 0, 2]), [cols, rows]);
}

defineOp({
  type: 'Gemm', attrs: { alpha: 'float', beta: 'float', transA: 'int', transB: 'int' },
  infer: (ctx) => {
    const a = need(ctx, 0);
    const b = need(ctx, 1);
    if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error('Gemm: operands must be 2-D');
    const [m, k1] = attrInt(ctx.attrs, 'transA', 0) ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [k2, n] = attrInt(ctx.attrs, 'transB', 0) ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (k1 !== k2) throw new Error(`Gemm: inner dims differ, ${shapeToString(a.shape)} × ${shapeToString(b.shape)}`);
    if (ctx.inputs[2]) broadcastShapes('Gemm', ctx.inputs[2].shape, [m, n]);
    return [{ dtype: a.dtype, shape: [m, n] }];
  },
  vjp: ({ inputs: [a, b, c], dy: [g], attrs }) => {
    const alpha = attrFloat(attrs, 'alpha', 1);
    const beta = attrFloat(attrs, 'beta', 1);
    const tA = attrInt(attrs, 'transA', 0) === 1;
    const tB = attrInt(attrs, 'transB', 0) === 1;
    // with A' = op(A), B' = op(B): dA' = α·dY·B'ᵀ, dB' = α·A'ᵀ·dY; transposed operands get transposed cotangents
    const da = tA ? gemm(b!, g!, undefined, { alpha, transA: tB, transB: true }) : gemm(g!, b!, undefined, { alpha, transB: !tB });
    const db = tB ? gemm(rowMajorTranspose(g!), a!, undefined, { alpha, transB: tA }) : gemm(tA ? a! : rowMajorTranspose(a!), g!, undefined, { alpha });
    const dc = c ? sumToShape(beta === 1 ? g! : mul(g!, beta), c.staticShape) : undefined;
    return [da, db, dc];
  },
});
