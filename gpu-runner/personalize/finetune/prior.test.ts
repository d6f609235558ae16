// Prior preservation: the class samples' loss is added with weight λ in the same step (the instance's loss unchanged),
// class samples are drawn once per model and settings, and bad settings are refused with a clear message.
import { describe, expect, it } from 'vitest';
import { SD15_SCHEDULER_CONFIG } from '../../diffusion/schedulers/sd15-config.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import { optimizeOnSubject } from './fast-finetune.ts';
import { classPrompts, classSampleSettingsSchema, classSamples, DEFAULT_CLASS_PROMPTS, MAX_CLASS_SAMPLES, parsePriorPreservation, type ClassSample } from './prior.ts';
import type { EncodedSubject } from './subject.ts';

const model = tinyPersonalizationModel();
const ddim = { className: 'DDIMScheduler', config: { ...SD15_SCHEDULER_CONFIG, _class_name: 'DDIMScheduler' } };
const side = model.resolution / 2 ** (model.vae.plan.config.blockOutChannels.length - 1);
const shape = [1, model.vae.plan.config.latentChannels, side, side] as const;
const n = shape[1] * side * side;
const latent = (name: string, std: number): EncodedSubject => ({
  mean: fillGaussianFloat32(namedRng(5, `${name}/mean`), n),
  std: new Float32Array(n).fill(std),
  shape,
  scalingFactor: model.vae.plan.config.scalingFactor,
});
const subject = latent('instance', 0.1);
const classSample: ClassSample = { prompt: 'a photo of a face, on a blue background, wearing a hat', latent: latent('class', 0) };

/** The loss on one fixed evaluation draw before any step (LoRA up factors start at zero: the base model's loss). */
async function lossWith(weight: number | undefined): Promise<number> {
  const { report } = await optimizeOnSubject(model, subject, { kind: 'relax', mode: 'lora', rank: 2 }, {
    steps: 0,
    evaluationSamples: 1,
    seed: 3,
    ...(weight === undefined ? {} : { prior: { weight, samples: [classSample] } }),
  });
  return report.evaluationBefore!;
}

describe('prior preservation', () => {
  it('adds λ · the class sample loss to the unchanged instance loss (linear in λ; λ = 0 is the instance alone)', async () => {
    const instance = await lossWith(undefined);
    const [zero, one, two] = [await lossWith(0), await lossWith(1), await lossWith(2)];
    expect(zero).toBe(instance); // λ = 0 turns it off: the batch-1 graph, bit for bit
    const classLoss = one - instance;
    expect(classLoss).toBeGreaterThan(1e-3);
    expect(Math.abs(two - (instance + 2 * classLoss))).toBeLessThan(1e-5 * Math.max(1, two));
  });

  it('keeps the instance loss when the class sample is weighted by a tiny λ (the batch does not leak between samples)', async () => {
    const instance = await lossWith(undefined);
    expect(Math.abs((await lossWith(1e-6)) - instance)).toBeLessThan(1e-5 * Math.max(1, instance));
  });

  it('lowers the combined loss when steps are taken', async () => {
    const { report } = await optimizeOnSubject(model, subject, { kind: 'lidb' }, { steps: 12, learningRate: 2e-2, evaluationSamples: 2, seed: 1, prior: { weight: 1, samples: [classSample] } });
    expect(report.evaluationAfter!).toBeLessThan(report.evaluationBefore!);
  });

  it('draws class samples once per model and settings, seeded, as exact latents', async () => {
    const settings = classSampleSettingsSchema.parse({ prompts: ['a face', 'a sketch of a face'], samplerSteps: 2, guidanceScale: 2 });
    const first = await classSamples(model, ddim, settings);
    expect(await classSamples(model, ddim, settings)).toBe(first);
    expect(first.map((s) => s.prompt)).toEqual(['a face', 'a sketch of a face']);
    for (const s of first) {
      expect(s.latent.shape).toEqual(shape);
      expect(s.latent.std.every((v) => v === 0)).toBe(true);
      expect(s.latent.mean.every(Number.isFinite)).toBe(true);
    }
    const reseeded = await classSamples(model, ddim, { ...settings, seed: 9 });
    expect(reseeded).not.toBe(first);
    expect(reseeded[0]!.latent.mean).not.toEqual(first[0]!.latent.mean);
  });

  it('refuses bad settings with a clear message', () => {
    expect(() => parsePriorPreservation({ weight: -1 })).toThrow(/prior preservation:.*weight/s);
    expect(() => parsePriorPreservation({ weight: 11 })).toThrow(/prior preservation/);
    const many = Array.from({ length: 40 }, (_, i) => `a face ${i}`);
    expect(() => parsePriorPreservation({ classSamples: { prompts: many, imagesPerPrompt: 2 } })).toThrow(new RegExp(`at most ${MAX_CLASS_SAMPLES} class samples`));
    expect(parsePriorPreservation({}).weight).toBe(1);
  });
});

it('chooses N class prompts from the defaults, cycling past the list (each position its own seed)', () => {
  expect(classPrompts(2)).toEqual(DEFAULT_CLASS_PROMPTS.slice(0, 2));
  const many = classPrompts(DEFAULT_CLASS_PROMPTS.length + 3);
  expect(many.slice(DEFAULT_CLASS_PROMPTS.length)).toEqual(DEFAULT_CLASS_PROMPTS.slice(0, 3));
  for (const prompt of DEFAULT_CLASS_PROMPTS) expect(prompt).not.toMatch(/\[V\]|sks/);
  expect(() => classPrompts(0)).toThrow(/count must be an integer in \[1, 64\]/);
  expect(() => classPrompts(MAX_CLASS_SAMPLES + 1)).toThrow(/count must be/);
});

it('refuses a prior with no class samples', async () => {
  await expect(optimizeOnSubject(model, subject, { kind: 'lidb' }, { steps: 1, prior: { weight: 1, samples: [] } })).rejects.toThrow(/at least one class sample/);
});
