import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTextEncoderFolder, openUnetFolder, openVaeFolder } from '../models/checkpoint/diffusers-folder.ts';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import { type LoadedModels, createDiffusionModels, loadStableDiffusion } from './pipeline.ts';
import { type GenerateRequest, applyGuidance, generate, imagesToPng } from './sampler.ts';
import { SCHEDULER_CLASSES } from './schedulers/index.ts';
import { SD15_SCHEDULER_CONFIG } from './schedulers/sd15-config.ts';
import { writeDiffusersFolder } from './reference-folder.ts';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from './tokenizer/clip-tokenizer.ts';

const BASE: GenerateRequest = {
  prompt: 'a photo of sks face',
  negativePrompt: 'blurry',
  seed: 7,
  numInferenceSteps: 4,
  guidanceScale: 7.5,
  width: 64,
  height: 64,
  scheduler: { className: 'DDIMScheduler', config: SD15_SCHEDULER_CONFIG },
};

let models: LoadedModels;
let tokenizer: ClipTokenizer;

// The real networks: the sd15-tiny checkpoints (SD 1.5 topology, tiny widths) through the model builders.
beforeAll(() => {
  models = createDiffusionModels(
    {
      unet: openUnetFolder(referencePath('sd15-tiny', 'unet')),
      textEncoder: openTextEncoderFolder(referencePath('sd15-tiny', 'text_encoder')),
      vae: openVaeFolder(referencePath('sd15-tiny', 'vae')),
    },
    { threads: 1 },
  );
  tokenizer = ClipTokenizer.load(BUNDLED_CLIP_VOCAB);
});
afterAll(async () => {
  await models.release();
});

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i]!)), 0);
}

describe('generate (tiny SD 1.5 models)', () => {
  it('is reproducible: the same request gives bit-identical latents and PNGs', async () => {
    const first = await generate(models, tokenizer, BASE);
    const second = await generate(models, tokenizer, BASE);
    expect(Array.from(second.latents)).toEqual(Array.from(first.latents));
    const [pngA] = await imagesToPng(first.images, 1, 64, 64);
    const [pngB] = await imagesToPng(second.images, 1, 64, 64);
    expect(pngA!.equals(pngB!)).toBe(true);
    const other = await generate(models, tokenizer, { ...BASE, seed: 8 });
    expect(maxDiff(other.latents, first.latents)).toBeGreaterThan(0.1);
  });

  it('gives image b of a batch the result of a single run with seed + b', async () => {
    const batch = await generate(models, tokenizer, { ...BASE, batchSize: 2 });
    expect(batch.seeds).toEqual([7, 8]);
    const single = await generate(models, tokenizer, { ...BASE, seed: 8 });
    const half = batch.latents.length / 2;
    expect(maxDiff(batch.latents.subarray(half), single.latents)).toBeLessThan(1e-4);
    expect(batch.images.length).toBe(2 * 3 * 64 * 64);
  });

  it('uses the negative prompt only under classifier-free guidance', async () => {
    const negative = (negativePrompt: string, guidanceScale: number) =>
      generate(models, tokenizer, { ...BASE, negativePrompt, guidanceScale });
    const [a, b] = [await negative('blurry', 7.5), await negative('a red car', 7.5)];
    expect(maxDiff(a.latents, b.latents)).toBeGreaterThan(1e-3);
    const [c, d] = [await negative('blurry', 1), await negative('a red car', 1)];
    expect(Array.from(c.latents)).toEqual(Array.from(d.latents));
  });

  it('runs every scheduler to finite latents, one callback per loop iteration', async () => {
    for (const className of SCHEDULER_CLASSES) {
      const calls: number[] = [];
      const result = await generate(models, tokenizer, {
        ...BASE,
        scheduler: { className, config: SD15_SCHEDULER_CONFIG },
        onStep: (step) => calls.push(step),
      });
      expect(result.latents.every(Number.isFinite), className).toBe(true);
      // PNDM's PLMS runs N + 1 iterations (its second timestep repeats).
      expect(calls.length, className).toBe(className === 'PNDMScheduler' ? 5 : 4);
      expect(result.timings.steps).toHaveLength(calls.length);
    }
  });

  it('makes non-square PNG images of the requested size', async () => {
    const result = await generate(models, tokenizer, { ...BASE, width: 64, height: 32 });
    const [png] = await imagesToPng(result.images, 1, 64, 32);
    const meta = await sharp(png!).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 64, 32, 3]);
  });

  it('rejects malformed requests with a clear message', async () => {
    await expect(generate(models, tokenizer, { ...BASE, width: 60 })).rejects.toThrow(/width must be a positive multiple of 8/);
    await expect(generate(models, tokenizer, { ...BASE, numInferenceSteps: 0 })).rejects.toThrow(/numInferenceSteps/);
    await expect(generate(models, tokenizer, { ...BASE, seed: -1 })).rejects.toThrow(/seed must be a non-negative integer/);
    await expect(generate(models, tokenizer, { ...BASE, batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(
      generate(models, tokenizer, { ...BASE, scheduler: { className: 'Nope', config: {} } }),
    ).rejects.toThrow(/unknown scheduler class "Nope"/);
  });
});

describe('guidance and image conversion', () => {
  it('applies ε_u + g·(ε_c − ε_u) with the unconditional half first', () => {
    const prediction = new Float32Array([1, 2, 3, 5]);
    expect(Array.from(applyGuidance(prediction, 2))).toEqual([1 + 2 * (3 - 1), 2 + 2 * (5 - 2)]);
  });

  it('maps [−1, 1] to 0..255 with clamping, as diffusers postprocesses', async () => {
    // One 1×2 image: red channel −1 and 1, green 0 and 3 (clamped), blue −5 (clamped) and 0.
    const images = new Float32Array([-1, 1, 0, 3, -5, 0]);
    const [png] = await imagesToPng(images, 1, 2, 1);
    const { data } = await sharp(png!).raw().toBuffer({ resolveWithObject: true });
    expect(Array.from(data)).toEqual([0, 128, 0, 255, 255, 128]);
    await expect(imagesToPng(images, 2, 2, 1)).rejects.toThrow(/expected 2×3×1×2 image values/);
  });
});

describe('loadStableDiffusion (a diffusers folder)', () => {
  it('loads model_index.json, the three models, tokenizer/ and scheduler/, and samples with the folder scheduler', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sd-folder-'));
    try {
      writeDiffusersFolder(referencePath('sd15-tiny'), root);
      const sd = loadStableDiffusion(root, { threads: 1 });
      try {
        expect(sd.scheduler.className).toBe('PNDMScheduler');
        const fromFolder = await generate(sd.models, sd.tokenizer, { ...BASE, scheduler: sd.scheduler });
        const direct = await generate(models, tokenizer, { ...BASE, scheduler: { className: 'PNDMScheduler', config: SD15_SCHEDULER_CONFIG } });
        expect(maxDiff(fromFolder.latents, direct.latents)).toBeLessThan(1e-5);
      } finally {
        await sd.models.release();
      }
      // The same weights referenced inside the safetensors files (external data) instead of copied into the graph.
      const external = loadStableDiffusion(root, { threads: 1, weights: 'external' });
      try {
        const fromExternal = await generate(external.models, external.tokenizer, { ...BASE, scheduler: external.scheduler });
        const inline = await generate(models, tokenizer, { ...BASE, scheduler: { className: 'PNDMScheduler', config: SD15_SCHEDULER_CONFIG } });
        expect(maxDiff(fromExternal.latents, inline.latents)).toBeLessThan(1e-5);
        expect(readdirSync(join(root, 'unet')).some((name) => name.endsWith('.onnx'))).toBe(true);
      } finally {
        await external.models.release();
      }
      rmSync(join(root, 'scheduler', 'scheduler_config.json'));
      expect(() => loadStableDiffusion(root)).toThrow(/missing .*scheduler_config\.json/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
