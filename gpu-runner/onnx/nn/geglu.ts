import type { Value } from '../ir/graph.ts';
import { gelu, mul } from '../ops/elementwise.ts';
import { chunk } from '../ops/shape-ops.ts';
import { linear } from './linear.ts';

/** diffusers GEGLU: project to 2·inner, split in (hidden, gate), return hidden·gelu(gate) (Shazeer 2020). */
export function geglu(x: Value, weight: Value, bias?: Value): Value {
  const [hidden, gate] = chunk(linear(x, weight, bias), 2, -1);
  return mul(hidden!, gelu(gate!, 'none'));
}
