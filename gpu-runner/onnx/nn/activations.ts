import type { Value } from '../ir/graph.ts';
import { mul, sigmoid } from '../ops/elementwise.ts';

/** SiLU (swish): x·σ(x), emitted as Sigmoid + Mul (no standard SiLU op at opset 21; onnxruntime fuses the pair). */
export function silu(x: Value): Value {
  return mul(x, sigmoid(x));
}

/** CLIP's QuickGELU: x·σ(1.702·x) (OpenAI CLIP `model.py`, transformers `activations.py`). */
export const QUICK_GELU_SCALE = 1.702;

export function quickGelu(x: Value): Value {
  return mul(x, sigmoid(mul(x, QUICK_GELU_SCALE)));
}
