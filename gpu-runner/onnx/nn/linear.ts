import type { Value } from '../ir/graph.ts';
import { add } from '../ops/elementwise.ts';
import { gemm, matmul } from '../ops/linalg.ts';
import { reshape, transpose } from '../ops/shape-ops.ts';

/**
 * torch.nn.Linear: y = x·Wᵀ + b with W in PyTorch's (out, in) layout, so checkpoint tensors load as they are.
 * 2-D inputs use one Gemm (transB); higher ranks a MatMul against the transposed weight.
 */
export function linear(x: Value, weight: Value, bias?: Value): Value {
  if (x.rank === 2) return gemm(x, weight, bias, { transB: true });
  const lead = x.shape.slice(0, -1);
  if (lead.every((d) => typeof d === 'number')) {
    // static leading dims fold into rows: one Gemm, whose rule emits dW = dY₂ᴰᵀ·X₂ᴰ already in (out, in) layout
    // (the MatMul route built (Xᵀ·dY)ᵀ, a transposed-A product 1.2–1.5× slower than the same-FLOP forward Gemm)
    const [outFeatures, inFeatures] = weight.staticShape as [number, number];
    const rows = gemm(reshape(x, [-1, inFeatures]), weight, bias, { transB: true });
    return reshape(rows, [...(lead as number[]), outFeatures]);
  }
  const y = matmul(x, transpose(weight, [1, 0]));
  return bias ? add(y, bias) : y;
}
