// The interface every sampling scheduler implements, mirroring diffusers' SchedulerMixin contract:
//   scheduler.setTimesteps(n)
//   latents = noise × scheduler.initNoiseSigma
//   for t of scheduler.timesteps:
//     eps = unet(scheduler.scaleModelInput(latents, t), t)
//     latents = scheduler.step(eps, t, latents).prevSample
// Tensors are flat Float32Arrays (NCHW order); the update rules are elementwise, computed in float64 per element and
// stored as float32 like the reference's float32 latents.
import { z } from 'zod';

/** A source of standard normal samples (the sampler passes our seeded PRNG). */
export interface GaussianSource {
  /** `count` independent N(0, 1) values. */
  normal(count: number): Float32Array;
}

export interface StepOptions {
  /** Noise for stochastic updates (Euler ancestral, DDIM with eta > 0). */
  generator?: GaussianSource;
}

export interface StepResult {
  prevSample: Float32Array;
  /** The model's x0 estimate at this step, where the scheduler computes one. */
  predOriginalSample?: Float32Array;
}

export interface Scheduler {
  /** The diffusers class this reproduces (the `_class_name` of scheduler_config.json). */
  readonly className: string;
  /** Timesteps of the sampling loop, after `setTimesteps` (fractional for Euler with linspace spacing). */
  readonly timesteps: readonly number[];
  /** Noise levels per loop iteration plus the final one (sigma-based schedulers only). */
  readonly sigmas?: readonly number[];
  /** Standard deviation of the initial latents. */
  readonly initNoiseSigma: number;
  /** The training schedule ᾱ_t (float32, as the reference stores it). */
  readonly alphasCumprod: Float32Array;
  setTimesteps(numInferenceSteps: number): void;
  /** The UNet input for this timestep (identity except for the sigma-based schedulers). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): StepResult;
  /**
   * Forward diffusion q(x_t | x_0) for training: `original` and `noise` hold `timesteps.length` equally sized rows
   * (the batch), row b noised to `timesteps[b]`.
   */
  addNoise(original: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array;
}

/** Applies `rowFn(coefficients)` per batch row: out = a·x + b·n with per-row scalars. */
export function mixRows(
  original: Float32Array,
  noise: Float32Array,
  coefficients: ReadonlyArray<readonly [number, number]>,
): Float32Array {
  if (original.length !== noise.length) {
    throw new Error(`addNoise: sample has ${original.length} values but noise has ${noise.length}`);
  }
  const rows = coefficients.length;
  if (rows === 0 || original.length % rows !== 0) {
    throw new Error(`addNoise: ${original.length} values do not split into ${rows} batch rows`);
  }
  const rowSize = original.length / rows;
  const out = new Float32Array(original.length);
  for (let r = 0; r < rows; r++) {
    const [a, b] = coefficients[r]!;
    for (let i = r * rowSize; i < (r + 1) * rowSize; i++) out[i] = a * original[i]! + b * noise[i]!;
  }
  return out;
}

export function checkSameLength(name: string, a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) throw new Error(`${name}: model output has ${a.length} values but sample has ${b.length}`);
}

export function requireTimesteps(className: string, timesteps: readonly number[]): void {
  if (timesteps.length === 0) throw new Error(`${className}: call setTimesteps before step`);
}

export function checkStepCount(className: string, steps: number, trainSteps: number): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > trainSteps) {
    throw new Error(`${className}: num_inference_steps must be an integer in [1, ${trainSteps}], got ${steps}`);
  }
}

/** Parses a scheduler config, naming the class and the offending keys on failure. */
export function parseConfig<S extends z.ZodType>(schema: S, config: unknown, className: string): z.infer<S> {
  const parsed = schema.safeParse(config);
  if (!parsed.success) throw new Error(`${className} config: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
