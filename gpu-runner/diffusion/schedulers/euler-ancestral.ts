// Euler ancestral sampler (k-diffusion `sample_euler_ancestral`, Karras et al. 2022 §3 with ancestral noise), as
// diffusers 0.24 EulerAncestralDiscreteScheduler: a deterministic Euler step down to σ_down, then fresh noise of
// size σ_up, with σ_up² + σ_down² = σ_next² so the marginal noise level stays on the schedule.
import { EulerScheduler } from './euler.ts';
import type { StepOptions, StepResult } from './scheduler.ts';
import { checkSameLength } from './scheduler.ts';

export class EulerAncestralScheduler extends EulerScheduler {
  override readonly className: string = 'EulerAncestralDiscreteScheduler';

  constructor(config: unknown = {}) {
    super(config);
    if (this.config.use_karras_sigmas) {
      throw new Error('EulerAncestralDiscreteScheduler: use_karras_sigmas is not a setting of this class in diffusers 0.24');
    }
  }

  override step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): StepResult {
    checkSameLength(this.className, modelOutput, sample);
    if (this.config.prediction_type === 'sample') {
      throw new Error(`${this.className}: prediction_type "sample" is not supported (diffusers raises too)`);
    }
    const index = this.currentIndex(timestep);
    const sigmaFrom = this.sigmas[index]!;
    const sigmaTo = this.sigmas[index + 1]!;
    const sigmaUp = Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2);
    const sigmaDown = Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2);
    if (!options.generator) throw new Error(`${this.className}: step needs a noise generator in step options`);
    const noise = options.generator.normal(sample.length);
    const dt = sigmaDown - sigmaFrom;
    const prevSample = new Float32Array(sample.length);
    const predOriginalSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const original = this.predictOriginal(modelOutput[i]!, x, sigmaFrom);
      predOriginalSample[i] = original;
      prevSample[i] = x + ((x - original) / sigmaFrom) * dt + noise[i]! * sigmaUp;
    }
    this.stepIndex = index + 1;
    return { prevSample, predOriginalSample };
  }
}
