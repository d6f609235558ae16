import type { Value } from '../ir/graph.ts';
import { cast, cos, mul, sin } from '../ops/elementwise.ts';
import { concat, pad, unsqueeze } from '../ops/shape-ops.ts';

export interface TimestepEmbeddingOptions {
  /** [cos, sin] instead of [sin, cos]; SD 1.5's UNet sets it (diffusers' default is false). */
  readonly flipSinToCos?: boolean;
  /** diffusers' `downscale_freq_shift` (default 1; SD 1.5's UNet uses 0). */
  readonly downscaleFreqShift?: number;
  readonly maxPeriod?: number;
  readonly scale?: number;
}

/** Period of the slowest frequency (Vaswani et al. 2017, §3.5; diffusers `get_timestep_embedding`'s `max_period`). */
export const MAX_PERIOD = 10_000;

/**
 * The sinusoidal frequencies exactly as torch computes them in float32, exp(−ln(max_period)·i / (half − shift)) with
 * each step rounded to float32: the SD 1.5 parity fixtures hold torch's values.
 */
export function timestepFrequencies(dim: number, shift: number, maxPeriod = MAX_PERIOD): Float32Array {
  const half = Math.floor(dim / 2);
  const out = new Float32Array(half);
  const negLog = Math.fround(-Math.log(maxPeriod));
  for (let i = 0; i < half; i++) out[i] = Math.fround(Math.exp(Math.fround(Math.fround(negLog * i) / Math.fround(half - shift))));
  return out;
}

/**
 * Sinusoidal embedding of timesteps (N,) → (N, dim), as diffusers' `get_timestep_embedding`: float32 arguments
 * (fractional timesteps allowed; integer ones are cast), an odd `dim` padded with one zero column.
 */
export function timestepEmbedding(timesteps: Value, dim: number, o: TimestepEmbeddingOptions = {}): Value {
  const g = timesteps.graph;
  const freqs = timestepFrequencies(dim, o.downscaleFreqShift ?? 1, o.maxPeriod);
  let args = mul(unsqueeze(cast(timesteps, 'float32'), [1]), g.constant({ dtype: 'float32', dims: [1, freqs.length], data: freqs }, 'timestep_freqs'));
  if (o.scale !== undefined && o.scale !== 1) args = mul(args, o.scale);
  const emb = concat(o.flipSinToCos ? [cos(args), sin(args)] : [sin(args), cos(args)], 1);
  return dim % 2 === 1 ? pad(emb, [0, 0, 0, 1]) : emb;
}
