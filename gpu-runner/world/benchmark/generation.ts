// Images from a method's weights: the sampler's networks with the weights applied, exactly the way the runner
// generates (PersonalizedSessions: LiDB and relax factors as graph inputs of the adapted text encoder and UNet, and
// Textual Inversion's learned rows and token ids as inputs of the text encoder's token table).
import { generate, type DiffusionModels, type SchedulerChoice } from '../../diffusion/sampler.ts';
import { createDiffusionModels, type LoadedModels } from '../../diffusion/pipeline.ts';
import type { PersonalizationModel } from '../../personalize/model.ts';
import type { PersonalizedWeights } from '../../personalize/weights/personalized-weights.ts';
import { PersonalizedSessions } from '../../personalize/personalized-diffusion.ts';
import type { ClipTokenizer } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import type { RgbImage } from '../render.ts';

export interface SamplingOptions {
  readonly scheduler: SchedulerChoice;
  readonly steps: number;
  readonly guidanceScale: number;
}

/** Every network the benchmark samples from, opened once per pack and shared by all methods and identities. */
export class BenchmarkSamplers {
  private readonly adapted: PersonalizedSessions;
  private readonly base: LoadedModels;

  constructor(
    private readonly model: PersonalizationModel,
    private readonly tokenizer: ClipTokenizer,
    private readonly threads: number | undefined,
  ) {
    this.adapted = new PersonalizedSessions(model, threads);
    this.base = createDiffusionModels({ unet: model.unet, textEncoder: model.textEncoder, vae: model.vae }, threads ? { threads } : {});
  }

  /** The networks for one set of weights; the base model when `weights` is undefined. */
  modelsFor(weights: PersonalizedWeights | undefined): DiffusionModels {
    return weights ? this.adapted.modelsFor(weights) : this.base;
  }

  /** Images (HWC, [0, 1]) for one prompt: `count` images with seeds seed, seed + 1, … (the sampler's contract). */
  async sample(weights: PersonalizedWeights | undefined, prompt: string, seed: number, count: number, options: SamplingOptions): Promise<RgbImage[]> {
    const size = this.model.resolution;
    const result = await generate(this.modelsFor(weights), this.tokenizer, {
      prompt,
      seed,
      numInferenceSteps: options.steps,
      guidanceScale: options.guidanceScale,
      width: size,
      height: size,
      batchSize: count,
      scheduler: options.scheduler,
    });
    return Array.from({ length: count }, (_, b) => toHwcImage(result.images, b, size));
  }

  async release(): Promise<void> {
    await Promise.all([this.adapted.release(), this.base.release()]);
  }
}

/** Image `index` of a decoded batch [batch, 3, H, W] in [−1, 1] → HWC in [0, 1] (diffusers' postprocess, unrounded). */
function toHwcImage(images: Float32Array, index: number, size: number): RgbImage {
  const plane = size * size;
  const data = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const offset = (index * 3 + c) * plane;
    for (let p = 0; p < plane; p++) data[p * 3 + c] = Math.min(1, Math.max(0, images[offset + p]! / 2 + 0.5));
  }
  return { width: size, height: size, data };
}
