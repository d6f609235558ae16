// PNDM (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models"), as diffusers 0.24 PNDMScheduler:
// pseudo Runge–Kutta warm-up steps (eq. 13) then pseudo linear multistep (PLMS, eq. 11-12). SD 1.5 ships
// skip_prk_steps = True: PLMS only, where N steps run N + 1 loop iterations because the second timestep is repeated
// to bootstrap the multistep history. With PRK, the first 3 steps take 4 model evaluations each (12 iterations).
import { z } from 'zod';
import { addNoiseByAlpha, refuseUnsupported } from './alpha-prediction.ts';
import {
  alphasCumprod,
  predictionTypeSchema,
  roundHalfEven,
  spacedTimesteps,
  timestepSpacingSchema,
  trainingScheduleSchema,
} from './noise-schedule.ts';
import { type Scheduler, type StepResult, checkSameLength, checkStepCount, requireTimesteps, parseConfig } from './scheduler.ts';

/** PNDMScheduler's constructor defaults (diffusers 0.24). */
export const pndmConfigSchema = trainingScheduleSchema.extend({
  num_train_timesteps: z.number().int().positive().default(1000),
  beta_start: z.number().positive().default(0.0001),
  beta_end: z.number().positive().default(0.02),
  beta_schedule: trainingScheduleSchema.shape.beta_schedule.default('linear'),
  trained_betas: z.array(z.number()).nullable().default(null),
  skip_prk_steps: z.boolean().default(false),
  set_alpha_to_one: z.boolean().default(false),
  prediction_type: predictionTypeSchema.default('epsilon'),
  timestep_spacing: timestepSpacingSchema.default('leading'),
  steps_offset: z.number().int().default(0),
});
export type PndmConfig = z.infer<typeof pndmConfigSchema>;

/** PNDM's order: the PRK warm-up covers the 4 highest timesteps' half steps. */
const PRK_ORDER = 4;

// Adams–Bashforth coefficients for 1..4 stored model outputs (newest first), PNDM paper eq. 12.
const ADAMS_BASHFORTH: ReadonlyArray<readonly number[]> = [
  [1],
  [3 / 2, -1 / 2],
  [23 / 12, -16 / 12, 5 / 12],
  [55 / 24, -59 / 24, 37 / 24, -9 / 24],
];

export class PndmScheduler implements Scheduler {
  readonly className = 'PNDMScheduler';
  readonly config: PndmConfig;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1.0;
  timesteps: number[] = [];
  private readonly finalAlphaCumprod: number;
  private numInferenceSteps = 0;
  private counter = 0;
  /** Past model outputs (ε), oldest first, at most 4. */
  private ets: Float32Array[] = [];
  private curSample: Float32Array | null = null;
  /** Timesteps of the Runge–Kutta warm-up (empty with skip_prk_steps). */
  private prkTimesteps: number[] = [];
  /** The RK4 weighted sum of the warm-up's model outputs, accumulated over its four evaluations. */
  private rkSum: Float32Array | null = null;

  constructor(config: unknown = {}) {
    this.config = parseConfig(pndmConfigSchema, config, this.className);
    refuseUnsupported(this.className, {});
    if (this.config.prediction_type === 'sample') {
      throw new Error('PNDMScheduler: prediction_type "sample" is not supported (diffusers refuses it too)');
    }
    this.alphasCumprod = alphasCumprod(this.config);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(this.className, numInferenceSteps, this.config.num_train_timesteps);
    this.numInferenceSteps = numInferenceSteps;
    const { timestep_spacing: spacing, num_train_timesteps: trainSteps, steps_offset: offset } = this.config;
    // Ascending grid, as PNDM builds it before reversing.
    const ascending = spacedTimesteps(spacing, trainSteps, numInferenceSteps, offset).map(roundHalfEven).reverse();
    if (this.config.skip_prk_steps) {
      // plms_timesteps = concat(ts[:-1], ts[-2:-1], ts[-1:]) reversed: the second-highest timestep appears twice.
      this.prkTimesteps = [];
      this.timesteps = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
    } else {
      // Each of the 3 highest steps is split in half; every half-step point is evaluated twice (RK4's k2, k3).
      const half = Math.floor(Math.floor(trainSteps / numInferenceSteps) / 2);
      const points = ascending.slice(-PRK_ORDER).flatMap((t) => [t, t + half]);
      const doubled = points.slice(0, -1).flatMap((t) => [t, t]).slice(1, -1);
      this.prkTimesteps = doubled.reverse();
      this.timesteps = [...this.prkTimesteps, ...ascending.slice(0, -3).reverse()];
    }
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
    this.rkSum = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    requireTimesteps(this.className, this.timesteps);
    checkSameLength(this.className, modelOutput, sample);
    if (this.counter < this.prkTimesteps.length) return { prevSample: this.stepPrk(modelOutput, timestep, sample) };
    const stride = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    let prevTimestep = timestep - stride;
    let current = timestep;
    if (this.counter !== 1) {
      this.ets = [...this.ets.slice(-3), modelOutput];
    } else {
      // The repeated timestep: the second iteration redoes the first step with the averaged ε (a Heun-like start).
      prevTimestep = timestep;
      current = timestep + stride;
    }
    let epsilon: Float32Array;
    let base = sample;
    if (this.ets.length === 1 && this.counter === 0) {
      epsilon = modelOutput;
      this.curSample = sample;
    } else if (this.ets.length === 1 && this.counter === 1) {
      epsilon = combine([modelOutput, this.ets[0]!], [0.5, 0.5]);
      base = this.curSample ?? sample;
      this.curSample = null;
    } else {
      const newestFirst = [...this.ets].reverse();
      epsilon = combine(newestFirst, ADAMS_BASHFORTH[newestFirst.length - 1]!);
    }
    const prevSample = this.previousSample(base, current, prevTimestep, epsilon);
    this.counter += 1;
    return { prevSample };
  }

  /** One pseudo Runge–Kutta evaluation: RK4 over four evaluations, each moving from the step's start sample. */
  private stepPrk(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const stride = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const prevTimestep = timestep - (this.counter % 2 ? 0 : Math.floor(stride / 2));
    const stepStart = this.prkTimesteps[Math.floor(this.counter / 4) * 4]!;
    let epsilon = modelOutput;
    switch (this.counter % 4) {
      case 0:
        this.rkSum = combine([modelOutput], [1 / 6]);
        this.ets.push(modelOutput);
        this.curSample = sample;
        break;
      case 1:
      case 2:
        this.rkSum = combine([this.rkSum!, modelOutput], [1, 1 / 3]);
        break;
      default:
        epsilon = combine([this.rkSum!, modelOutput], [1, 1 / 6]);
        this.rkSum = null;
    }
    const prevSample = this.previousSample(this.curSample ?? sample, stepStart, prevTimestep, epsilon);
    this.counter += 1;
    return prevSample;
  }

  /** PNDM paper eq. 11: the transfer φ(x_t, ε, t, t−δ). */
  private previousSample(sample: Float32Array, timestep: number, prevTimestep: number, modelOutput: Float32Array): Float32Array {
    const alphaProdT = this.alphasCumprod[timestep]!;
    const alphaProdPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep]! : this.finalAlphaCumprod;
    const betaProdT = 1 - alphaProdT;
    const betaProdPrev = 1 - alphaProdPrev;
    const sampleCoeff = Math.sqrt(alphaProdPrev / alphaProdT);
    const denominator = alphaProdT * Math.sqrt(betaProdPrev) + Math.sqrt(alphaProdT * betaProdT * alphaProdPrev);
    const outputCoeff = (alphaProdPrev - alphaProdT) / denominator;
    const out = new Float32Array(sample.length);
    const vPrediction = this.config.prediction_type === 'v_prediction';
    for (let i = 0; i < sample.length; i++) {
      const epsilon = vPrediction
        ? Math.sqrt(alphaProdT) * modelOutput[i]! + Math.sqrt(betaProdT) * sample[i]!
        : modelOutput[i]!;
      out[i] = sampleCoeff * sample[i]! - outputCoeff * epsilon;
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
    return addNoiseByAlpha(this.className, this.alphasCumprod, original, noise, timesteps);
  }
}

/** Σ weights[k] · tensors[k], in float64, stored as float32 (the reference keeps ets in float32). */
function combine(tensors: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const out = new Float32Array(tensors[0]!.length);
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (let k = 0; k < tensors.length; k++) sum += weights[k]! * tensors[k]![i]!;
    out[i] = sum;
  }
  return out;
}
