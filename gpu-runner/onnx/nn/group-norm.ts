import type { Value } from '../ir/graph.ts';
import { add, div, mul, sqrt, sub } from '../ops/elementwise.ts';
import { reduceMean } from '../ops/reduce.ts';
import { reshape } from '../ops/shape-ops.ts';

/** Default ε of torch.nn.GroupNorm (diffusers passes 1e-5 or 1e-6 explicitly). */
export const GROUP_NORM_EPSILON = 1e-5;

/**
 * torch.nn.GroupNorm on (N, C, …) as Reshape + ReduceMean steps: onnxruntime has no CPU kernel for
 * GroupNormalization-21 and its function expansion is 2.6× slower (docs/engine.md). Biased variance, as torch.
 */
export function groupNorm(x: Value, groups: number, scale?: Value, bias?: Value, epsilon = GROUP_NORM_EPSILON): Value {
  const dims = x.shape;
  const c = dims[1];
  if (typeof c !== 'number' || c % groups !== 0) throw new Error(`groupNorm: ${String(c)} channels do not split into ${groups} groups`);
  const grouped = reshape(x, [dims[0]!, groups, -1]);
  const centered = sub(grouped, reduceMean(grouped, [2], true));
  const variance = reduceMean(mul(centered, centered), [2], true);
  const normalized = reshape(div(centered, sqrt(add(variance, epsilon))), dims);
  const perChannel = [c, ...dims.slice(2).map(() => 1)];
  let y = normalized;
  if (scale) y = mul(y, reshape(scale, perChannel));
  if (bias) y = add(y, reshape(bias, perChannel));
  return y;
}
