// The sigma (noise level) schedule shared by Euler and Euler ancestral (k-diffusion's parameterization,
// x_t = x0 + σ·ε with σ = √((1 − ᾱ)/ᾱ)), as diffusers 0.24 EulerDiscreteScheduler.set_timesteps builds it.
import { z } from 'zod';
import {
  alphasCumprod,
  interpOverIndex,
  karrasSigmas,
  predictionTypeSchema,
  roundHalfEven,
  sigmaToTimestep,
  spacedTimesteps,
  timestepSpacingSchema,
  trainingScheduleSchema,
  trainingSigmas,
} from './noise-schedule.ts';

const f32 = Math.fround;

/** EulerDiscreteScheduler / EulerAncestralDiscreteScheduler constructor defaults (diffusers 0.24). */
export const eulerConfigSchema = trainingScheduleSchema.extend({
  num_train_timesteps: z.number().int().positive().default(1000),
  beta_start: z.number().positive().default(0.0001),
  beta_end: z.number().positive().default(0.02),
  beta_schedule: trainingScheduleSchema.shape.beta_schedule.default('linear'),
  trained_betas: z.array(z.number()).nullable().default(null),
  prediction_type: predictionTypeSchema.default('epsilon'),
  interpolation_type: z.enum(['linear', 'log_linear']).default('linear'),
  use_karras_sigmas: z.boolean().default(false),
  sigma_min: z.number().nullable().default(null),
  sigma_max: z.number().nullable().default(null),
  timestep_spacing: timestepSpacingSchema.default('linspace'),
  timestep_type: z.enum(['discrete', 'continuous']).default('discrete'),
  steps_offset: z.number().int().default(0),
});
export type EulerConfig = z.infer<typeof eulerConfigSchema>;

export interface SigmaSchedule {
  /** Float32 timesteps the UNet receives (fractional with linspace spacing). */
  timesteps: number[];
  /** Float32 sigmas, one per timestep plus a final 0. */
  sigmas: number[];
}

export function eulerSigmaSchedule(config: EulerConfig, alphas: Float32Array, steps: number): SigmaSchedule {
  const { timestep_spacing: spacing, num_train_timesteps: trainSteps, steps_offset: offset } = config;
  // numpy builds linspace timesteps as float32; leading/trailing are rounded (half to even) integers.
  let timesteps = spacedTimesteps(spacing, trainSteps, steps, offset).map((t) =>
    spacing === 'linspace' ? f32(t) : roundHalfEven(t),
  );
  const train = trainingSigmas(alphas);
  let sigmas: number[];
  if (config.interpolation_type === 'log_linear') {
    // exp(linspace(log σ_max, log σ_min, steps + 1)), as diffusers writes it.
    const logMin = Math.log(train[0]!);
    const logMax = Math.log(train[train.length - 1]!);
    sigmas = Array.from({ length: steps + 1 }, (_, i) => Math.exp(logMax + ((logMin - logMax) * i) / steps));
  } else {
    sigmas = timesteps.map((t) => interpOverIndex(t, train));
  }
  if (config.use_karras_sigmas) {
    const sigmaMin = config.sigma_min ?? sigmas[sigmas.length - 1]!;
    const sigmaMax = config.sigma_max ?? sigmas[0]!;
    sigmas = karrasSigmas(sigmaMin, sigmaMax, steps);
    const logSigmas = Array.from(train, (s) => f32(Math.log(s)));
    timesteps = sigmas.map((s) => f32(sigmaToTimestep(s, logSigmas)));
  }
  return { timesteps, sigmas: [...sigmas.map(f32), 0] };
}

export function eulerTrainingSchedule(config: EulerConfig): Float32Array {
  if (config.timestep_type === 'continuous') {
    throw new Error('Euler schedulers: timestep_type "continuous" is not supported');
  }
  return alphasCumprod(config);
}

/** The initial latent scale: σ_max for linspace/trailing grids, √(σ_max² + 1) for leading (diffusers' rule). */
export function eulerInitNoiseSigma(config: EulerConfig, sigmas: readonly number[]): number {
  const sigmaMax = Math.max(...sigmas);
  return config.timestep_spacing === 'leading' ? Math.sqrt(sigmaMax * sigmaMax + 1) : sigmaMax;
}

/** diffusers _init_step_index: the first step is the timestep's index (the second match if it repeats). */
export function stepIndexOf(timesteps: readonly number[], timestep: number, className: string): number {
  const matches = timesteps.flatMap((t, i) => (t === f32(timestep) || t === timestep ? [i] : []));
  if (matches.length === 0) throw new Error(`${className}: timestep ${timestep} is not in the schedule`);
  return matches.length > 1 ? matches[1]! : matches[0]!;
}
