// Prior preservation (DreamBooth, Ruiz et al. 2023, §3.3): while finetuning on the subject, the same adapted model also
// fits images the base model drew for class prompts ("a photo of a face, on a blue background, wearing a hat"), so the
// identifier absorbs the subject but the class and its contexts keep meaning what they meant. Loss per step:
// MSE(instance) + λ · MSE(class sample). The class samples do not depend on the subject: generated once per loaded
// model and settings, then shared by every personalization.
import { z } from 'zod';
import { createDiffusionModels } from '../../diffusion/pipeline.ts';
import { generate, type SchedulerChoice } from '../../diffusion/sampler.ts';
import type { PersonalizationModel } from '../model.ts';
import type { EncodedSubject } from './subject.ts';

/** DreamBooth's prior-preservation weight λ. */
export const DEFAULT_PRIOR_WEIGHT = 1;
export const MAX_CLASS_SAMPLES = 64;

/**
 * "a face" in the contexts prompts ask for (style, background, accessory), in the wording of the world pack's
 * pretraining captions (SD 1.5 reads them as plain English too). No identifier: these are what must not change.
 */
export const DEFAULT_CLASS_PROMPTS: readonly string[] = [
  'a photo of a face, on a white background',
  'a photo of a face, on a blue background, wearing a hat',
  'a sketch of a face, on a red background',
  'pixel art of a face, on a green background, wearing glasses',
  'a photo of a face, on a yellow background, wearing glasses',
  'a sketch of a face, on a purple background, wearing a hat',
  'pixel art of a face, on an orange background',
  'a photo of a face, on a grey background',
];

/**
 * `count` class prompts: the first `count` of `prompts`, cycling when more are asked for (a repeated prompt is drawn
 * with another seed, so it is another image: `classSamples` seeds each prompt by its position).
 */
export function classPrompts(count: number, prompts: readonly string[] = DEFAULT_CLASS_PROMPTS): string[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_CLASS_SAMPLES) throw new RangeError(`class prompts: count must be an integer in [1, ${MAX_CLASS_SAMPLES}], got ${count}`);
  if (prompts.length === 0) throw new RangeError('class prompts: no prompts to choose from');
  return Array.from({ length: count }, (_, i) => prompts[i % prompts.length]!);
}

export const classSampleSettingsSchema = z
  .object({
    prompts: z.array(z.string().min(1).max(300)).min(1).max(MAX_CLASS_SAMPLES).default([...DEFAULT_CLASS_PROMPTS]),
    imagesPerPrompt: z.number().int().min(1).max(8).default(1),
    seed: z.number().int().nonnegative().default(0),
    samplerSteps: z.number().int().min(1).max(100).default(25),
    guidanceScale: z.number().min(0).max(30).default(4),
  })
  .refine((s) => s.prompts.length * s.imagesPerPrompt <= MAX_CLASS_SAMPLES, { message: `at most ${MAX_CLASS_SAMPLES} class samples (prompts × imagesPerPrompt)` });
export type ClassSampleSettings = z.output<typeof classSampleSettingsSchema>;

export const priorPreservationSchema = z.object({
  /** λ: weight of the class samples' loss against the instance's (0 turns prior preservation off). */
  weight: z.number().min(0).max(10).default(DEFAULT_PRIOR_WEIGHT),
  classSamples: classSampleSettingsSchema.default(classSampleSettingsSchema.parse({})),
});
export type PriorPreservationSettings = z.output<typeof priorPreservationSchema>;

export function parsePriorPreservation(value: unknown): PriorPreservationSettings {
  const parsed = priorPreservationSchema.safeParse(value);
  if (!parsed.success) throw new Error(`prior preservation: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** One class image as the loss sees it: its latent (x₀ exactly: std 0) and the prompt it was drawn for. */
export interface ClassSample {
  readonly prompt: string;
  readonly latent: EncodedSubject;
}

/** What a finetune takes: the weight and the class samples (from `classSamples`). */
export interface PriorPreservation {
  readonly weight: number;
  readonly samples: readonly ClassSample[];
}

const cache = new WeakMap<PersonalizationModel, Map<string, Promise<ClassSample[]>>>();

/**
 * The base model's images for the class prompts (`imagesPerPrompt` each, seeds seed, seed + 1, …), as latents. Cached
 * per loaded model and settings: every personalization with the same settings trains on the same class samples.
 */
export function classSamples(model: PersonalizationModel, scheduler: SchedulerChoice, settings: ClassSampleSettings): Promise<ClassSample[]> {
  let byKey = cache.get(model);
  if (!byKey) cache.set(model, (byKey = new Map()));
  const key = JSON.stringify({ settings, scheduler });
  let samples = byKey.get(key);
  if (!samples) {
    samples = drawClassSamples(model, scheduler, settings);
    byKey.set(key, samples);
    samples.catch(() => byKey.delete(key));
  }
  return samples;
}

/** A finetune's prior preservation from its settings: λ and the (cached) class samples drawn with `scheduler`. */
export async function preparePriorPreservation(model: PersonalizationModel, scheduler: SchedulerChoice, settings: PriorPreservationSettings): Promise<PriorPreservation> {
  return { weight: settings.weight, samples: await classSamples(model, scheduler, settings.classSamples) };
}

async function drawClassSamples(model: PersonalizationModel, scheduler: SchedulerChoice, settings: ClassSampleSettings): Promise<ClassSample[]> {
  const models = createDiffusionModels({ unet: model.unet, textEncoder: model.textEncoder, vae: model.vae });
  const side = model.resolution;
  const config = model.vae.plan.config;
  const latentSide = side / 2 ** (config.blockOutChannels.length - 1);
  const shape = [1, config.latentChannels, latentSide, latentSide] as const;
  const size = shape[1] * latentSide * latentSide;
  try {
    const samples: ClassSample[] = [];
    for (const [p, prompt] of settings.prompts.entries()) {
      const result = await generate(models, model.tokenizer, {
        prompt,
        seed: settings.seed + p * settings.imagesPerPrompt,
        numInferenceSteps: settings.samplerSteps,
        guidanceScale: settings.guidanceScale,
        width: side,
        height: side,
        batchSize: settings.imagesPerPrompt,
        scheduler,
      });
      for (let i = 0; i < settings.imagesPerPrompt; i++) {
        // The sampler's final latents are x₀ in the UNet's (scaled) space: mean = x₀ / scaling_factor, no spread.
        const mean = Float32Array.from(result.latents.subarray(i * size, (i + 1) * size), (v) => v / config.scalingFactor);
        samples.push({ prompt, latent: { mean, std: new Float32Array(size), shape, scalingFactor: config.scalingFactor } });
      }
    }
    return samples;
  } finally {
    await models.release();
  }
}
