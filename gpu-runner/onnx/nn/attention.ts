import type { Value } from '../ir/graph.ts';
import { add, cast, mul, where } from '../ops/elementwise.ts';
import { matmul } from '../ops/linalg.ts';
import { softmax } from '../ops/normalization.ts';
import { reshape, transpose } from '../ops/shape-ops.ts';

export interface AttentionOptions {
  readonly heads: number;
  /**
   * Additive float mask broadcastable to (B, heads, Lq, Lk) (0 keeps, large negative drops, e.g. CLIP's causal
   * mask), or a bool mask where true keeps.
   */
  readonly mask?: Value;
  /** Softmax scale; default 1/√(head dim) (Vaswani et al. 2017, §3.2.1). */
  readonly scale?: number;
}

/** Large negative logit for masked positions (finite so fully masked rows stay NaN-free). */
export const MASKED_LOGIT = -1e9;

/** Multi-head scaled dot-product attention on projected q (B, Lq, D), k and v (B, Lk, D); returns (B, Lq, D). */
export function attention(q: Value, k: Value, v: Value, o: AttentionOptions): Value {
  const [b, lq, d] = q.shape;
  const lk = k.shape[1]!;
  if (typeof d !== 'number' || d % o.heads !== 0) throw new Error(`attention: dim ${String(d)} does not split into ${o.heads} heads`);
  const dh = d / o.heads;
  const heads = (x: Value, len: number | string) => transpose(reshape(x, [b!, len, o.heads, dh]), [0, 2, 1, 3]);
  // scale q (B·Lq·D values) rather than the scores (B·heads·Lq·Lk): same math, and the backward pass then scales
  // the small q cotangent instead of the large score cotangent
  const qh = mul(heads(q, lq!), o.scale ?? 1 / Math.sqrt(dh));
  const kt = transpose(reshape(k, [b!, lk, o.heads, dh]), [0, 2, 3, 1]);
  const vh = heads(v, lk);
  // float16 scores are widened for the mask and the Softmax: its exp and row sums need float32's range and
  // precision (the precision paragraph of ../runtime/README.md), and CLIP's mask is float32's lowest value
  let scores = q.dtype === 'float16' ? cast(matmul(qh, kt), 'float32') : matmul(qh, kt);
  if (o.mask) scores = o.mask.dtype === 'bool' ? where(o.mask, scores, MASKED_LOGIT) : add(scores, o.mask);
  const out = matmul(cast(softmax(scores, -1), q.dtype), vh);
  return reshape(transpose(out, [0, 2, 1, 3]), [b!, lq!, d]);
}
