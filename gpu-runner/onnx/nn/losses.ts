import type { Value } from '../ir/graph.ts';
import { mul, sub } from '../ops/elementwise.ts';
import { reduceMean } from '../ops/reduce.ts';

/** Mean squared error over all elements (torch.nn.functional.mse_loss, reduction 'mean'); a scalar. */
export function mseLoss(prediction: Value, target: Value): Value {
  const d = sub(prediction, target);
  return reduceMean(mul(d, d));
}
