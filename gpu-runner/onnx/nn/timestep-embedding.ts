import type { Value } from '../ir/graph.ts';
import { cast, cos, mul, sin } from '../ops/elementwise.ts';
import { concat, unsqueeze } from '../ops/shape-ops.ts';

export interface TimestepEmbeddingOptions {
  /** SD 1.5's UNet uses flip_sin_to_cos = true and downscale_freq_shift = 0. */
  readonly flipSinToCos?: boolean;
  readonly downscaleFreqShift?: number;
  readonly maxPeriod?: number;
  readonly scale?: number;
}

/** Period of the slowest frequency (Vaswani et al. 2017, §3.5; diffusers `get_timestep_embedding`). */
export const MAX_PERIOD = 10_000;

/** Sinusoidal embedding of timesteps (N,) → (N, dim), as diffusers' `get_timestep_embedding`. */
export function timestepEmbedding(timesteps: Value, dim: number, o: TimestepEmbeddingOptions = {}): Value {
  if (dim % 2 !== 0) throw new Error('timestepEmbedding: odd dims are not supported');
  const half = dim / 2;
  const shift = o.downscaleFreqShift ?? 1;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(o.maxPeriod ?? MAX_PERIOD) * i) / (half - shift)));
  const g = timesteps.graph;
  const t = unsqueeze(cast(timesteps, 'float32'), [1]);
  const args = mul(mul(t, g.constant({ dtype: 'float32', dims: [1, half], data: freqs }, 'freqs')), o.scale ?? 1);
  const parts = o.flipSinToCos ? [cos(args), sin(args)] : [sin(args), cos(args)];
  return concat(parts, 1);
}
