import type { Value } from '../ir/graph.ts';
import { mul, sub } from '../ops/elementwise.ts';
import { reduceMean, reduceSum } from '../ops/reduce.ts';

/** Mean squared error over all elements (torch.nn.functional.mse_loss, reduction 'mean'); a scalar. */
export function mseLoss(prediction: Value, target: Value): Value {
  const d = sub(prediction, target);
  return reduceMean(mul(d, d));
}

/**
 * Σ_b w_b · mean((prediction_b − target_b)²): each sample's MSE over its own elements, weighted and summed (e.g.
 * DreamBooth's instance loss + λ · prior-preservation loss, weights [1, λ]). `weights` is [B]; a scalar.
 */
export function weightedMseLoss(prediction: Value, target: Value, weights: Value): Value {
  const [batch] = prediction.staticShape;
  if (weights.rank !== 1 || weights.staticShape[0] !== batch) {
    throw new Error(`weightedMseLoss: weights ${weights.toString()} must be [${batch}], one per sample of ${prediction.toString()}`);
  }
  const d = sub(prediction, target);
  const perSample = reduceMean(mul(d, d), Array.from({ length: prediction.rank - 1 }, (_, i) => i + 1));
  return reduceSum(mul(perSample, weights));
}
