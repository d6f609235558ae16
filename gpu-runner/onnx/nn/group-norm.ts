import type { Graph, Value } from '../ir/graph.ts';
import type { DType } from '../ir/types.ts';
import { add, mul } from '../ops/elementwise.ts';
import { layerNorm } from '../ops/normalization.ts';
import { constantOfShape, reshape } from '../ops/shape-ops.ts';

/** Default ε of torch.nn.GroupNorm (diffusers passes 1e-5 or 1e-6 explicitly). */
export const GROUP_NORM_EPSILON = 1e-5;

/** One all-ones vector per (graph, size, dtype): the unit scale of each group norm's LayerNormalization. */
const unitScales = new WeakMap<Graph, Map<string, Value>>();

function unitScale(g: Graph, size: number, dtype: DType): Value {
  let perGraph = unitScales.get(g);
  if (!perGraph) unitScales.set(g, (perGraph = new Map()));
  const key = `${dtype}:${size}`;
  let unit = perGraph.get(key);
  // ConstantOfShape, not an initializer: the model file does not store the ones (a 512 px VAE needs 1M of them)
  if (!unit) perGraph.set(key, (unit = constantOfShape(g, [size], 1, dtype)));
  return unit;
}

/**
 * torch.nn.GroupNorm on (N, C, …): LayerNormalization over each group of a [N, G, C/G·…] view, then the per-channel
 * affine. onnxruntime has no CPU kernel for GroupNormalization-21 and its function expansion is slow
 * (docs/engine.md); LayerNormalization is one fused kernel with a gradient rule, and is what the SD 1.5 parity
 * fixtures were matched with. Biased variance, as torch.
 */
export function groupNorm(x: Value, groups: number, scale?: Value, bias?: Value, epsilon = GROUP_NORM_EPSILON): Value {
  const dims = x.shape;
  const c = dims[1];
  if (typeof c !== 'number' || c % groups !== 0) throw new Error(`groupNorm: ${String(c)} channels do not split into ${groups} groups`);
  const spatial = dims.slice(2);
  if (!spatial.every((d): d is number => typeof d === 'number')) throw new Error(`groupNorm: spatial dims of ${x.toString()} must be static`);
  const groupSize = (c / groups) * spatial.reduce((a, b) => a * b, 1);
  const unit = unitScale(x.graph, groupSize, x.dtype);
  const normalized = reshape(layerNorm(reshape(x, [dims[0]!, groups, groupSize]), unit, undefined, { axis: -1, epsilon }), dims);
  const perChannel = [c, ...spatial.map(() => 1)];
  let y = normalized;
  if (scale) y = mul(y, reshape(scale, perChannel));
  if (bias) y = add(y, reshape(bias, perChannel));
  return y;
}
