// DPM-Solver++ multistep (Lu et al. 2022, "DPM-Solver++", Algorithm 2 "2M"; third order optional) and DPM-Solver (Lu et al. 2022,
// first/second-order multistep), as diffusers DPMSolverMultistepScheduler. Two reference behaviours, chosen by
// `behaviour`: diffusers 0.24 (final sigma = σ(t=0), Karras schedules repeat their last sigma) and diffusers 0.32
// (`final_sigmas_type`, default "zero": last sigma 0 and a first-order final step, so the last sample is x0).
import { z } from 'zod';
import { refuseUnsupported } from './alpha-prediction.ts';
import {
  alphasCumprod,
  arange,
  interpOverIndex,
  karrasSigmas,
  linspace,
  predictionTypeSchema,
  roundHalfEven,
  sigmaToTimestep,
  timestepSpacingSchema,
  trainingScheduleSchema,
  trainingSigmas,
} from './noise-schedule.ts';
import { type Scheduler, type StepResult, checkSameLength, checkStepCount, mixRows, requireTimesteps, parseConfig } from './scheduler.ts';

const f32 = Math.fround;

/** DPMSolverMultistepScheduler constructor defaults (diffusers 0.24; `final_sigmas_type` exists from 0.25 on). */
export const dpmSolverConfigSchema = trainingScheduleSchema.extend({
  num_train_timesteps: z.number().int().positive().default(1000),
  beta_start: z.number().positive().default(0.0001),
  beta_end: z.number().positive().default(0.02),
  beta_schedule: trainingScheduleSchema.shape.beta_schedule.default('linear'),
  trained_betas: z.array(z.number()).nullable().default(null),
  solver_order: z.number().int().min(1).max(3).default(2),
  prediction_type: predictionTypeSchema.default('epsilon'),
  thresholding: z.boolean().default(false),
  algorithm_type: z.enum(['dpmsolver++', 'dpmsolver']).default('dpmsolver++'),
  solver_type: z.enum(['midpoint', 'heun']).default('midpoint'),
  lower_order_final: z.boolean().default(true),
  euler_at_final: z.boolean().default(false),
  use_karras_sigmas: z.boolean().default(false),
  use_lu_lambdas: z.literal(false).default(false),
  final_sigmas_type: z.enum(['zero', 'sigma_min']).optional(),
  // Python writes -inf here; zod's number() refuses non-finite values.
  lambda_min_clipped: z.custom<number>((v) => typeof v === 'number' && !Number.isNaN(v)).default(Number.NEGATIVE_INFINITY),
  variance_type: z.null().default(null),
  timestep_spacing: timestepSpacingSchema.default('linspace'),
  steps_offset: z.number().int().default(0),
  rescale_betas_zero_snr: z.boolean().default(false),
});
export type DpmSolverConfig = z.infer<typeof dpmSolverConfigSchema>;

export type DpmSolverBehaviour = 'diffusers-0.24' | 'diffusers-0.32';

export interface DpmSolverOptions {
  /** Which diffusers release to reproduce when the config has no `final_sigmas_type` (default 0.24, our reference;
   *  a config that names `final_sigmas_type` always gets the 0.32 semantics). */
  behaviour?: DpmSolverBehaviour;
}

/** diffusers lower_order_final only applies below this many steps: long schedules stay second order to the end. */
const LOWER_ORDER_FINAL_MAX_STEPS = 15;

export class DpmSolverMultistepScheduler implements Scheduler {
  readonly className = 'DPMSolverMultistepScheduler';
  readonly config: DpmSolverConfig;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1.0;
  readonly finalSigmasType: 'zero' | 'sigma_min' | 'legacy';
  timesteps: number[] = [];
  sigmas: number[] = [];
  private stepIndex: number | null = null;
  /** Data predictions x0 of the previous steps (newest last), `solver_order` of them. */
  private modelOutputs: Float32Array[] = [];
  private lowerOrderNums = 0;

  constructor(config: unknown = {}, options: DpmSolverOptions = {}) {
    this.config = parseConfig(dpmSolverConfigSchema, config, this.className);
    refuseUnsupported(this.className, this.config);
    this.alphasCumprod = alphasCumprod(this.config);
    const behaviour = options.behaviour ?? 'diffusers-0.24';
    this.finalSigmasType = this.config.final_sigmas_type ?? (behaviour === 'diffusers-0.32' ? 'zero' : 'legacy');
    if (this.finalSigmasType === 'zero' && this.config.algorithm_type !== 'dpmsolver++') {
      throw new Error(`${this.className}: final_sigmas_type "zero" needs algorithm_type dpmsolver++ (as in diffusers)`);
    }
  }

  /** The last training timestep kept when λ is clipped (lambda_min_clipped guards cosine schedules). */
  private lastTimestep(): number {
    const trainSteps = this.config.num_train_timesteps;
    if (!Number.isFinite(this.config.lambda_min_clipped)) return trainSteps;
    // searchsorted(flip(λ_t), lambda_min_clipped): λ_t = log √ᾱ − log √(1−ᾱ) in float32, decreasing in t.
    const lambdas = Array.from(this.alphasCumprod, (a) => f32(Math.log(f32(Math.sqrt(a))) - Math.log(f32(Math.sqrt(f32(1 - a))))));
    const ascending = lambdas.reverse();
    const clipped = ascending.findIndex((lambda) => lambda >= this.config.lambda_min_clipped);
    return trainSteps - (clipped < 0 ? ascending.length : clipped);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(this.className, numInferenceSteps, this.config.num_train_timesteps);
    const last = this.lastTimestep();
    const steps = numInferenceSteps;
    let timesteps: number[];
    switch (this.config.timestep_spacing) {
      case 'linspace':
        timesteps = linspace(0, last - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
        break;
      case 'leading': {
        const ratio = Math.floor(last / (steps + 1));
        timesteps = Array.from({ length: steps + 1 }, (_, i) => i * ratio).reverse().slice(0, -1);
        timesteps = timesteps.map((t) => t + this.config.steps_offset);
        break;
      }
      case 'trailing': {
        const ratio = this.config.num_train_timesteps / steps;
        timesteps = arange(last, 0, -ratio).map((t) => roundHalfEven(t) - 1);
        break;
      }
    }
    const train = trainingSigmas(this.alphasCumprod);
    const sigmaAtZero = train[0]!;
    let sigmas: number[];
    if (this.config.use_karras_sigmas) {
      // Karras et al. 2022 eq. 5 between σ(t=0) and σ(t=T), mapped back to (rounded) training timesteps.
      sigmas = karrasSigmas(train[0]!, train[train.length - 1]!, steps);
      const logSigmas = Array.from(train, (s) => f32(Math.log(s)));
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToTimestep(s, logSigmas)));
    } else {
      sigmas = timesteps.map((t) => interpOverIndex(t, train));
    }
    const finalSigma =
      this.finalSigmasType === 'zero'
        ? 0
        : this.finalSigmasType === 'sigma_min' || !this.config.use_karras_sigmas
          ? sigmaAtZero
          : sigmas[sigmas.length - 1]!;
    this.timesteps = timesteps;
    this.sigmas = [...sigmas, finalSigma].map(f32);
    this.stepIndex = null;
    this.modelOutputs = [];
    this.lowerOrderNums = 0;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** VP coefficients of a sigma: α_t = 1/√(σ²+1), σ_t = σ·α_t; λ = log α_t − log σ_t. */
  private coefficients(sigma: number): { alpha: number; sigmaT: number; lambda: number } {
    const alpha = 1 / Math.sqrt(sigma * sigma + 1);
    const sigmaT = sigma * alpha;
    return { alpha, sigmaT, lambda: Math.log(alpha) - Math.log(sigmaT) };
  }

  /** The solver's working quantity: x0 for DPM-Solver++, ε for DPM-Solver. */
  private convertModelOutput(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    const { alpha, sigmaT } = this.coefficients(sigma);
    const out = new Float32Array(sample.length);
    const dataPrediction = this.config.algorithm_type === 'dpmsolver++';
    for (let i = 0; i < sample.length; i++) {
      const m = modelOutput[i]!;
      const x = sample[i]!;
      let x0: number;
      let eps: number;
      switch (this.config.prediction_type) {
        case 'epsilon':
          eps = m;
          x0 = (x - sigmaT * m) / alpha;
          break;
        case 'sample':
          x0 = m;
          eps = (x - alpha * m) / sigmaT;
          break;
        case 'v_prediction':
          x0 = alpha * x - sigmaT * m;
          eps = alpha * m + sigmaT * x;
          break;
      }
      out[i] = dataPrediction ? x0 : eps;
    }
    return out;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    requireTimesteps(this.className, this.timesteps);
    checkSameLength(this.className, modelOutput, sample);
    if (this.stepIndex === null) {
      const matches = this.timesteps.flatMap((t, i) => (t === timestep ? [i] : []));
      this.stepIndex = matches.length === 0 ? this.timesteps.length - 1 : matches.length > 1 ? matches[1]! : matches[0]!;
    }
    const index = this.stepIndex;
    const count = this.timesteps.length;
    const shortSchedule = this.config.lower_order_final && count < LOWER_ORDER_FINAL_MAX_STEPS;
    const lowerOrderFinal =
      index === count - 1 && (this.config.euler_at_final || shortSchedule || this.finalSigmasType === 'zero');
    const lowerOrderSecond = index === count - 2 && shortSchedule;
    const converted = this.convertModelOutput(modelOutput, sample, this.sigmas[index]!);
    this.modelOutputs = [...this.modelOutputs, converted].slice(-this.config.solver_order);
    const order = this.config.solver_order;
    let prevSample: Float32Array;
    if (order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      prevSample = this.firstOrderUpdate(converted, sample, index);
    } else if (order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) {
      prevSample = this.secondOrderUpdate(sample, index);
    } else {
      prevSample = this.thirdOrderUpdate(sample, index);
    }
    if (this.lowerOrderNums < this.config.solver_order) this.lowerOrderNums += 1;
    this.stepIndex = index + 1;
    return { prevSample };
  }

  /** DPM-Solver++ eq. 5 (first order = DDIM in the data parameterization). */
  private firstOrderUpdate(converted: Float32Array, sample: Float32Array, index: number): Float32Array {
    const t = this.coefficients(this.sigmas[index + 1]!);
    const s = this.coefficients(this.sigmas[index]!);
    const h = t.lambda - s.lambda;
    const out = new Float32Array(sample.length);
    if (this.config.algorithm_type === 'dpmsolver++') {
      // σ_t = 0 (final_sigmas_type "zero") gives λ_t = ∞, exp(−h) = 0: the update returns x0 exactly.
      const sampleScale = t.sigmaT / s.sigmaT;
      const outputScale = t.alpha * (Math.exp(-h) - 1);
      for (let i = 0; i < out.length; i++) out[i] = sampleScale * sample[i]! - outputScale * converted[i]!;
    } else {
      const sampleScale = t.alpha / s.alpha;
      const outputScale = t.sigmaT * (Math.exp(h) - 1);
      for (let i = 0; i < out.length; i++) out[i] = sampleScale * sample[i]! - outputScale * converted[i]!;
    }
    return out;
  }

  /** DPM-Solver++(2M), Algorithm 2 of the paper (midpoint) or its Heun variant. */
  private secondOrderUpdate(sample: Float32Array, index: number): Float32Array {
    const t = this.coefficients(this.sigmas[index + 1]!);
    const s0 = this.coefficients(this.sigmas[index]!);
    const s1 = this.coefficients(this.sigmas[index - 1]!);
    const m0 = this.modelOutputs[this.modelOutputs.length - 1]!;
    const m1 = this.modelOutputs[this.modelOutputs.length - 2]!;
    const h = t.lambda - s0.lambda;
    const h0 = s0.lambda - s1.lambda;
    const r0 = h0 / h;
    let sampleScale: number;
    let d0Scale: number;
    let d1Scale: number;
    if (this.config.algorithm_type === 'dpmsolver++') {
      const phi = t.alpha * (Math.exp(-h) - 1);
      sampleScale = t.sigmaT / s0.sigmaT;
      d0Scale = -phi;
      d1Scale = this.config.solver_type === 'midpoint' ? -0.5 * phi : t.alpha * ((Math.exp(-h) - 1) / h + 1);
    } else {
      const phi = t.sigmaT * (Math.exp(h) - 1);
      sampleScale = t.alpha / s0.alpha;
      d0Scale = -phi;
      d1Scale = this.config.solver_type === 'midpoint' ? -0.5 * phi : -(t.sigmaT * ((Math.exp(h) - 1) / h - 1));
    }
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      const d0 = m0[i]!;
      const d1 = (1 / r0) * (m0[i]! - m1[i]!);
      out[i] = sampleScale * sample[i]! + d0Scale * d0 + d1Scale * d1;
    }
    return out;
  }

  /** DPM-Solver++(3M) / DPM-Solver-3 multistep (Lu et al. 2022, DPM-Solver++ Appendix; diffusers' third order). */
  private thirdOrderUpdate(sample: Float32Array, index: number): Float32Array {
    const t = this.coefficients(this.sigmas[index + 1]!);
    const s0 = this.coefficients(this.sigmas[index]!);
    const s1 = this.coefficients(this.sigmas[index - 1]!);
    const s2 = this.coefficients(this.sigmas[index - 2]!);
    const n = this.modelOutputs.length;
    const [m0, m1, m2] = [this.modelOutputs[n - 1]!, this.modelOutputs[n - 2]!, this.modelOutputs[n - 3]!];
    const h = t.lambda - s0.lambda;
    const r0 = (s0.lambda - s1.lambda) / h;
    const r1 = (s1.lambda - s2.lambda) / h;
    let sampleScale: number;
    let c0: number;
    let c1: number;
    let c2: number;
    if (this.config.algorithm_type === 'dpmsolver++') {
      const expm1 = Math.exp(-h) - 1;
      sampleScale = t.sigmaT / s0.sigmaT;
      c0 = -t.alpha * expm1;
      c1 = t.alpha * (expm1 / h + 1);
      c2 = -t.alpha * ((expm1 + h) / (h * h) - 0.5);
    } else {
      const expm1 = Math.exp(h) - 1;
      sampleScale = t.alpha / s0.alpha;
      c0 = -t.sigmaT * expm1;
      c1 = -t.sigmaT * (expm1 / h - 1);
      c2 = -t.sigmaT * ((expm1 - h) / (h * h) - 0.5);
    }
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      const d10 = (1 / r0) * (m0[i]! - m1[i]!);
      const d11 = (1 / r1) * (m1[i]! - m2[i]!);
      const d1 = d10 + (r0 / (r0 + r1)) * (d10 - d11);
      const d2 = (1 / (r0 + r1)) * (d10 - d11);
      out[i] = sampleScale * sample[i]! + c0 * m0[i]! + c1 * d1 + c2 * d2;
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
    requireTimesteps(this.className, this.timesteps);
    return mixRows(
      original,
      noise,
      timesteps.map((t) => {
        const index = this.timesteps.indexOf(t);
        if (index < 0) throw new Error(`${this.className}.addNoise: timestep ${t} is not in the schedule`);
        const { alpha, sigmaT } = this.coefficients(this.sigmas[index]!);
        return [alpha, sigmaT] as const;
      }),
    );
  }
}
