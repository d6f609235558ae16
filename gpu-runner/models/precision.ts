// The precision an inference graph computes in. 'fp32' is the graphs as the parity fixtures were matched with;
// 'fp16' stores weights and activations as float16 for CUDA's fp16 kernels (half the memory traffic, tensor cores),
// with the numerically sensitive ops (GroupNorm, LayerNorm, Softmax, the timestep embedding, LoRA/LiDB deltas) in
// float32, and float32 graph inputs and outputs so callers feed and read the same tensors in both (the precision
// paragraph of `../onnx/runtime/README.md`). Training graphs are always fp32: gradients never flow through fp16.
import type { DType } from '../onnx/index.ts';

export const INFERENCE_PRECISIONS = ['fp32', 'fp16'] as const;
export type InferencePrecision = (typeof INFERENCE_PRECISIONS)[number];

/** The element type of a graph's weights and activations at `precision`. */
export function computeDtype(precision: InferencePrecision): DType {
  return precision === 'fp16' ? 'float16' : 'float32';
}

/** The runner's RUNNER_SAMPLING_PRECISION: a precision, or 'auto' to follow the provider. */
export const SAMPLING_PRECISION_SETTINGS = ['auto', ...INFERENCE_PRECISIONS] as const;
export type SamplingPrecisionSetting = (typeof SAMPLING_PRECISION_SETTINGS)[number];

/**
 * The precision of a sampling graph for a session on `provider`: 'auto' is fp16 on CUDA, where onnxruntime has
 * float16 kernels, and fp32 on the CPU, whose provider computes float16 graphs in float32 behind inserted Casts (a
 * slower fp32 run, the README's measurement). An explicit choice holds on either (fp16 on the CPU is for tests).
 */
export function samplingPrecisionFor(setting: SamplingPrecisionSetting, provider: 'cpu' | 'cuda'): InferencePrecision {
  if (setting !== 'auto') return setting;
  return provider === 'cuda' ? 'fp16' : 'fp32';
}
