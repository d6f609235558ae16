import type { Value } from '../ir/graph.ts';
import { add } from '../ops/elementwise.ts';
import { gemm, matmul } from '../ops/linalg.ts';
import { transpose } from '../ops/shape-ops.ts';

/**
 * torch.nn.Linear: y = x·Wᵀ + b with W in PyTorch's (out, in) layout, so checkpoint tensors load as they are.
 * 2-D inputs use one Gemm (transB); higher ranks a MatMul against the transposed weight.
 */
export function linear(x: Value, weight: Value, bias?: Value): Value {
  if (x.rank === 2) return gemm(x, weight, bias, { transB: true });
  const y = matmul(x, transpose(weight, [1, 0]));
  return bias ? add(y, bias) : y;
}
