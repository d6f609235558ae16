// The training noise schedule and the inference timestep grids shared by the schedulers, reproducing diffusers
// 0.24's arithmetic: betas/alphas_cumprod are float32 tensors (torch.linspace in float32, squared in float32,
// cumprod accumulated in double and stored as float32); timestep grids and sigma interpolation are numpy float64.
import { z } from 'zod';

const f32 = Math.fround;

export const betaScheduleSchema = z.enum(['linear', 'scaled_linear', 'squaredcos_cap_v2']);
export const timestepSpacingSchema = z.enum(['leading', 'linspace', 'trailing']);
export const predictionTypeSchema = z.enum(['epsilon', 'v_prediction', 'sample']);
export type TimestepSpacing = z.infer<typeof timestepSpacingSchema>;
export type PredictionType = z.infer<typeof predictionTypeSchema>;

/** Keys every diffusers noise scheduler shares (scheduler_config.json); class defaults are applied by each class. */
export const trainingScheduleSchema = z.object({
  num_train_timesteps: z.number().int().positive(),
  beta_start: z.number().positive(),
  beta_end: z.number().positive(),
  beta_schedule: betaScheduleSchema,
  trained_betas: z.array(z.number()).nullable(),
});
export type TrainingScheduleConfig = z.infer<typeof trainingScheduleSchema>;

/** torch.linspace(start, end, steps, dtype=float32) on CPU: float32 step, first half counted up from `start`,
 *  second half counted down from `end` (aten RangeFactoriesKernel). */
export function torchLinspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const from = f32(start);
  const to = f32(end);
  const step = f32(f32(to - from) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? f32(from + f32(step * i)) : f32(to - f32(step * (steps - i - 1)));
  }
  return out;
}

/** diffusers betas_for_alpha_bar (cosine, max_beta 0.999), computed in float64 then stored as float32. */
function cosineBetas(count: number): Float32Array {
  const MAX_BETA = 0.999; // diffusers default: keeps beta < 1 near t = 1
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  return Float32Array.from({ length: count }, (_, i) =>
    Math.min(1 - alphaBar((i + 1) / count) / alphaBar(i / count), MAX_BETA),
  );
}

export function trainingBetas(config: TrainingScheduleConfig): Float32Array {
  if (config.trained_betas) return Float32Array.from(config.trained_betas);
  switch (config.beta_schedule) {
    case 'linear':
      return torchLinspaceFloat32(config.beta_start, config.beta_end, config.num_train_timesteps);
    case 'scaled_linear':
      return torchLinspaceFloat32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), config.num_train_timesteps).map(
        (b) => f32(b * b),
      );
    case 'squaredcos_cap_v2':
      return cosineBetas(config.num_train_timesteps);
  }
}

/** alphas_cumprod = cumprod(1 - betas) as torch computes it on CPU (double accumulator, float32 output). */
export function alphasCumprod(config: TrainingScheduleConfig): Float32Array {
  const betas = trainingBetas(config);
  const out = new Float32Array(betas.length);
  let product = 1;
  for (let i = 0; i < betas.length; i++) {
    product *= f32(1 - betas[i]!);
    out[i] = product;
  }
  return out;
}

/** sigma_t = sqrt((1 - ᾱ_t) / ᾱ_t) for every training step, in float32 like the torch expression. */
export function trainingSigmas(alphas: Float32Array): Float32Array {
  return alphas.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** numpy's round (half to even), which every diffusers timestep grid uses. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** numpy.linspace(start, stop, num) in float64 (endpoint included; numpy sets the last value to `stop` exactly). */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : start + i * step));
}

/** numpy.arange(start, stop, step) for a float step. */
export function arange(start: number, stop: number, step: number): number[] {
  const count = Math.max(0, Math.ceil((stop - start) / step));
  return Array.from({ length: count }, (_, i) => start + i * step);
}

/** numpy.interp with xp = 0..fp.length-1 (the only form the schedulers use). */
export function interpOverIndex(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0]!;
  if (x >= last) return fp[last]!;
  const low = Math.floor(x);
  const w = x - low;
  return fp[low]! + w * (fp[low + 1]! - fp[low]!);
}

/**
 * The inference timestep grid of DDIM/Euler/PNDM for a spacing (descending, as floats before any integer cast):
 * "Common Diffusion Noise Schedules and Sample Steps Are Flawed" (Lin et al. 2023), Table 2, defines the three.
 */
export function spacedTimesteps(spacing: TimestepSpacing, trainSteps: number, steps: number, offset: number): number[] {
  switch (spacing) {
    case 'linspace':
      return linspace(0, trainSteps - 1, steps).reverse();
    case 'leading': {
      const ratio = Math.floor(trainSteps / steps);
      return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + offset);
    }
    case 'trailing': {
      const ratio = trainSteps / steps;
      return arange(trainSteps, 0, -ratio).map((t) => roundHalfEven(t) - 1);
    }
  }
}

/** Karras et al. 2022 (EDM), eq. 5: sigmas spaced uniformly in sigma^(1/ρ), ρ = 7. */
export const KARRAS_RHO = 7;
export function karrasSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  const minInvRho = sigmaMin ** (1 / KARRAS_RHO);
  const maxInvRho = sigmaMax ** (1 / KARRAS_RHO);
  return linspace(0, 1, steps).map((ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** KARRAS_RHO);
}

/** diffusers _sigma_to_t: the fractional training timestep whose log-sigma brackets `sigma` (linear in log sigma). */
export function sigmaToTimestep(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // low = the last index whose log-sigma is <= logSigma (cumsum(dists >= 0).argmax), clipped so low + 1 exists.
  let low = 0;
  let count = 0;
  let bestCount = -1;
  for (let i = 0; i < logSigmas.length; i++) {
    if (logSigma - logSigmas[i]! >= 0) count++;
    if (count > bestCount) {
      bestCount = count;
      low = i;
    }
  }
  low = Math.min(low, logSigmas.length - 2);
  const lowValue = logSigmas[low]!;
  const highValue = logSigmas[low + 1]!;
  const w = Math.min(1, Math.max(0, (lowValue - logSigma) / (lowValue - highValue)));
  return (1 - w) * low + w * (low + 1);
}
