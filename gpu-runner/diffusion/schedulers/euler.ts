// Euler sampler of Karras et al. 2022 ("Elucidating the Design Space...", Algorithm 2 with S_churn), as diffusers 0.24
// EulerDiscreteScheduler: the probability-flow ODE dx/dσ = (x − x0)/σ integrated with explicit Euler steps.
import { eulerConfigSchema, eulerInitNoiseSigma, eulerSigmaSchedule, eulerTrainingSchedule, stepIndexOf, type EulerConfig } from './euler-sigmas.ts';
import { type Scheduler, type StepOptions, type StepResult, checkSameLength, checkStepCount, mixRows, requireTimesteps, parseConfig } from './scheduler.ts';

export interface EulerOptions {
  /** Karras' S_churn (0 = deterministic ODE sampler; diffusers' default). */
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
}

export class EulerScheduler implements Scheduler {
  readonly className: string = 'EulerDiscreteScheduler';
  readonly config: EulerConfig;
  readonly alphasCumprod: Float32Array;
  timesteps: number[] = [];
  sigmas: number[] = [];
  protected stepIndex: number | null = null;
  private readonly churn: Required<EulerOptions>;

  constructor(config: unknown = {}, options: EulerOptions = {}) {
    this.config = parseConfig(eulerConfigSchema, config, this.className);
    this.alphasCumprod = eulerTrainingSchedule(this.config);
    this.churn = { sChurn: 0, sTmin: 0, sTmax: Number.POSITIVE_INFINITY, sNoise: 1, ...options };
  }

  get initNoiseSigma(): number {
    requireTimesteps(this.className, this.timesteps);
    return eulerInitNoiseSigma(this.config, this.sigmas);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(this.className, numInferenceSteps, this.config.num_train_timesteps);
    const schedule = eulerSigmaSchedule(this.config, this.alphasCumprod, numInferenceSteps);
    this.timesteps = schedule.timesteps;
    this.sigmas = schedule.sigmas;
    this.stepIndex = null;
  }

  protected currentIndex(timestep: number): number {
    requireTimesteps(this.className, this.timesteps);
    this.stepIndex ??= stepIndexOf(this.timesteps, timestep, this.className);
    return this.stepIndex;
  }

  /** The UNet sees x / √(σ² + 1), the variance-preserving input it was trained on. */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.currentIndex(timestep)]!;
    const scale = 1 / Math.sqrt(sigma * sigma + 1);
    return sample.map((x) => x * scale);
  }

  /** x0 from the model output at noise level σ. */
  protected predictOriginal(modelOutput: number, sample: number, sigma: number): number {
    switch (this.config.prediction_type) {
      case 'epsilon':
        return sample - sigma * modelOutput;
      case 'v_prediction':
        return modelOutput * (-sigma / Math.sqrt(sigma * sigma + 1)) + sample / (sigma * sigma + 1);
      case 'sample':
        return modelOutput;
    }
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): StepResult {
    checkSameLength(this.className, modelOutput, sample);
    const index = this.currentIndex(timestep);
    const sigma = this.sigmas[index]!;
    const { sChurn, sTmin, sTmax, sNoise } = this.churn;
    const gamma = sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / (this.sigmas.length - 1), Math.SQRT2 - 1) : 0;
    const sigmaHat = sigma * (gamma + 1);
    let current = sample;
    if (gamma > 0) {
      if (!options.generator) throw new Error(`${this.className}: s_churn > 0 needs a noise generator in step options`);
      const noise = options.generator.normal(sample.length);
      const scale = Math.sqrt(sigmaHat * sigmaHat - sigma * sigma);
      current = sample.map((x, i) => x + noise[i]! * sNoise * scale);
    }
    const dt = this.sigmas[index + 1]! - sigmaHat;
    const prevSample = new Float32Array(sample.length);
    const predOriginalSample = new Float32Array(sample.length);
    // diffusers uses σ̂ in the ε → x0 conversion but the plain σ in the v-prediction formula.
    const sigmaForPrediction = this.config.prediction_type === 'epsilon' ? sigmaHat : sigma;
    for (let i = 0; i < sample.length; i++) {
      const x = current[i]!;
      const original = this.predictOriginal(modelOutput[i]!, x, sigmaForPrediction);
      predOriginalSample[i] = original;
      prevSample[i] = x + ((x - original) / sigmaHat) * dt;
    }
    this.stepIndex = index + 1;
    return { prevSample, predOriginalSample };
  }

  addNoise(original: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
    requireTimesteps(this.className, this.timesteps);
    return mixRows(
      original,
      noise,
      timesteps.map((t) => {
        const index = this.timesteps.findIndex((s) => s === Math.fround(t));
        if (index < 0) throw new Error(`${this.className}.addNoise: timestep ${t} is not in the schedule`);
        return [1, this.sigmas[index]!] as const;
      }),
    );
  }
}
