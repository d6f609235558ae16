// DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12), as diffusers 0.24 DDIMScheduler.
import { z } from 'zod';
import {
  alphasCumprod,
  predictionTypeSchema,
  roundHalfEven,
  spacedTimesteps,
  timestepSpacingSchema,
  trainingScheduleSchema,
} from './noise-schedule.ts';
import {
  type GaussianSource,
  type Scheduler,
  type StepOptions,
  type StepResult,
  checkSameLength,
  checkStepCount,
  parseConfig,
  requireTimesteps,
} from './scheduler.ts';
import { addNoiseByAlpha, predictOriginalAndEpsilon, refuseUnsupported } from './alpha-prediction.ts';

/** DDIMScheduler's constructor defaults (diffusers 0.24), applied to keys a scheduler_config.json lacks. */
export const ddimConfigSchema = trainingScheduleSchema
  .extend({
    num_train_timesteps: z.number().int().positive().default(1000),
    beta_start: z.number().positive().default(0.0001),
    beta_end: z.number().positive().default(0.02),
    beta_schedule: trainingScheduleSchema.shape.beta_schedule.default('linear'),
    trained_betas: z.array(z.number()).nullable().default(null),
    clip_sample: z.boolean().default(true),
    clip_sample_range: z.number().default(1.0),
    set_alpha_to_one: z.boolean().default(true),
    steps_offset: z.number().int().default(0),
    prediction_type: predictionTypeSchema.default('epsilon'),
    thresholding: z.boolean().default(false),
    timestep_spacing: timestepSpacingSchema.default('leading'),
    rescale_betas_zero_snr: z.boolean().default(false),
  });
export type DdimConfig = z.infer<typeof ddimConfigSchema>;

export interface DdimOptions {
  /** η of the paper: 0 is deterministic DDIM, 1 recovers DDPM's variance. */
  eta?: number;
}

export class DdimScheduler implements Scheduler {
  readonly className = 'DDIMScheduler';
  readonly config: DdimConfig;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1.0;
  timesteps: number[] = [];
  private readonly finalAlphaCumprod: number;
  private readonly eta: number;
  private numInferenceSteps = 0;

  constructor(config: unknown = {}, options: DdimOptions = {}) {
    this.config = parseConfig(ddimConfigSchema, config, this.className);
    refuseUnsupported(this.className, this.config);
    this.alphasCumprod = alphasCumprod(this.config);
    // With set_alpha_to_one false (SD 1.5), the step past t = 0 uses ᾱ_0 instead of 1.
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
    this.eta = options.eta ?? 0;
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(this.className, numInferenceSteps, this.config.num_train_timesteps);
    this.numInferenceSteps = numInferenceSteps;
    const { timestep_spacing: spacing, num_train_timesteps: trainSteps, steps_offset: offset } = this.config;
    // linspace rounds (numpy, half to even) before the int64 cast; leading/trailing grids are integers already.
    this.timesteps = spacedTimesteps(spacing, trainSteps, numInferenceSteps, offset).map(roundHalfEven);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  private alphaAt(timestep: number): number {
    return timestep >= 0 ? this.alphasCumprod[timestep]! : this.finalAlphaCumprod;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): StepResult {
    requireTimesteps(this.className, this.timesteps);
    checkSameLength(this.className, modelOutput, sample);
    const prevTimestep = timestep - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const alphaProdT = this.alphaAt(timestep);
    const alphaProdPrev = this.alphaAt(prevTimestep);
    const betaProdT = 1 - alphaProdT;
    const variance = ((1 - alphaProdPrev) / betaProdT) * (1 - alphaProdT / alphaProdPrev);
    const stdDev = this.eta * Math.sqrt(variance);
    const noise = stdDev > 0 ? requireNoise(this.className, options.generator, sample.length) : null;
    const directionScale = Math.sqrt(1 - alphaProdPrev - stdDev * stdDev);
    const sqrtAlphaPrev = Math.sqrt(alphaProdPrev);
    const prevSample = new Float32Array(sample.length);
    const predOriginalSample = new Float32Array(sample.length);
    const clip = this.config.clip_sample ? this.config.clip_sample_range : Number.POSITIVE_INFINITY;
    for (let i = 0; i < sample.length; i++) {
      const { original, epsilon } = predictOriginalAndEpsilon(
        this.config.prediction_type,
        modelOutput[i]!,
        sample[i]!,
        alphaProdT,
        clip,
      );
      predOriginalSample[i] = original;
      let x = sqrtAlphaPrev * original + directionScale * epsilon;
      if (noise) x += stdDev * noise[i]!;
      prevSample[i] = x;
    }
    return { prevSample, predOriginalSample };
  }

  addNoise(original: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
    return addNoiseByAlpha(this.className, this.alphasCumprod, original, noise, timesteps);
  }
}

function requireNoise(className: string, generator: GaussianSource | undefined, count: number): Float32Array {
  if (!generator) throw new Error(`${className}: eta > 0 needs a noise generator in step options`);
  return generator.normal(count);
}
