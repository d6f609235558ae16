import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TINY_CONFIGS, writeTinyLdmCheckpoint } from '../models/checkpoint/testing/ldm-file.ts';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import { openStableDiffusion } from './checkpoint.ts';
import { loadStableDiffusion } from './pipeline.ts';
import { type GenerateRequest, generate } from './sampler.ts';
import { writeDiffusersFolder } from './reference-folder.ts';
import { SD15_SCHEDULER_CONFIG } from './schedulers/sd15-config.ts';
import { BUNDLED_CLIP_VOCAB } from './tokenizer/clip-tokenizer.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-sd-checkpoint-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const REQUEST: GenerateRequest = {
  prompt: 'a photo of sks face',
  negativePrompt: 'blurry',
  seed: 3,
  numInferenceSteps: 3,
  guidanceScale: 7.5,
  width: 64,
  height: 64,
  scheduler: { className: 'DDIMScheduler', config: SD15_SCHEDULER_CONFIG },
};

describe('opening the Stable Diffusion checkpoints people have', () => {
  it('a single file, given as the file or as the folder holding it: bundled CLIP vocabulary, SD 1.5 scheduler', () => {
    const dir = mkdtempSync(join(scratch, 'single-'));
    const file = join(dir, 'tiny-ldm.safetensors');
    writeTinyLdmCheckpoint(file);
    mkdirSync(join(dir, 'hypernetwork'));
    for (const path of [file, dir]) {
      const checkpoint = openStableDiffusion(path, { singleFileConfigs: TINY_CONFIGS });
      expect(checkpoint).toMatchObject({ format: 'single-file', path: file, tokenizer: BUNDLED_CLIP_VOCAB });
      expect(checkpoint.schedulerConfig).toEqual(SD15_SCHEDULER_CONFIG);
      expect(checkpoint.ignored.length).toBeGreaterThan(0);
    }
    expect(() => openStableDiffusion(dir, { variant: 'fp16', singleFileConfigs: TINY_CONFIGS })).toThrow(/applies to diffusers folders only/);
    copyFileSync(file, join(dir, 'other.safetensors'));
    expect(() => openStableDiffusion(dir)).toThrow(/no model_index\.json and several \.safetensors files \(other\.safetensors, tiny-ldm\.safetensors\)/);
    const empty = mkdtempSync(join(scratch, 'empty-'));
    writeFileSync(join(empty, 'notes.txt'), 'no weights');
    expect(() => openStableDiffusion(empty)).toThrow(/no model_index\.json \(a diffusers folder\) and no \.safetensors file/);
    writeFileSync(join(empty, 'v1-5-pruned-emaonly.ckpt'), 'not read');
    expect(() => openStableDiffusion(empty)).toThrow(/found v1-5-pruned-emaonly\.ckpt: pickle checkpoints are not loaded/);
  });

  it('a diffusers folder with its tokenizer and scheduler config', () => {
    const root = writeDiffusersFolder(referencePath('sd15-tiny'), mkdtempSync(join(scratch, 'folder-')));
    const checkpoint = openStableDiffusion(root);
    expect(checkpoint).toMatchObject({ format: 'diffusers', path: root, tokenizer: join(root, 'tokenizer'), ignored: [] });
    expect(checkpoint.schedulerConfig._class_name).toBe('PNDMScheduler');
  });

  it('generates from a single file with weights referenced in place exactly as from the diffusers folder', async () => {
    const root = writeDiffusersFolder(referencePath('sd15-tiny'), mkdtempSync(join(scratch, 'folder-')));
    const dir = mkdtempSync(join(scratch, 'single-'));
    writeTinyLdmCheckpoint(join(dir, 'model.safetensors'));
    const folder = loadStableDiffusion(root, { threads: 1 });
    const single = loadStableDiffusion(dir, { threads: 1, weights: 'external', singleFileConfigs: TINY_CONFIGS });
    try {
      const [a, b] = [await generate(folder.models, folder.tokenizer, REQUEST), await generate(single.models, single.tokenizer, REQUEST)];
      expect(b.latents).toEqual(a.latents);
      // The graphs were saved beside the single file, where onnxruntime resolves its external data.
      expect(readdirSync(dir).filter((name) => name.endsWith('.onnx')).length).toBeGreaterThanOrEqual(3);
    } finally {
      await Promise.all([folder.models.release(), single.models.release()]);
    }
  });
});
