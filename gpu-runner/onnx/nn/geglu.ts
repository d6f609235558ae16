import type { Value } from '../ir/graph.ts';
import { gelu, mul } from '../ops/elementwise.ts';
import { chunk } from '../ops/shape-ops.ts';

/**
 * diffusers GEGLU on a projection of width 2·inner: split into (hidden, gate) along the last axis and return
 * hidden·gelu(gate) with the exact (erf) GELU (Shazeer 2020; diffusers activations.py). The projection is the
 * caller's, so a model can adapt it (LoRA, LiDB) like any other linear layer.
 */
export function geglu(projected: Value): Value {
  const [hidden, gate] = chunk(projected, 2, -1);
  return mul(hidden!, gelu(gate!, 'none'));
}
