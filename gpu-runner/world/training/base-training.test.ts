import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../onnx/optim/index.ts';
import { clipTextInventory } from '../../models/clip-text/inventory.ts';
import { parseClipTextConfig } from '../../models/clip-text/config.ts';
import { parseUnetConfig } from '../../models/unet/config.ts';
import { unetInventory } from '../../models/unet/inventory.ts';
import { planUnet } from '../../models/unet/plan.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { sampleAt } from '../dataset.ts';
import { BASE_TEXT_ENCODER_CONFIG, BASE_TEXT_LENGTH, BASE_UNET_CONFIG, baseModel, baseParameterCounts } from './base-config.ts';
import { baseTokenizer, encodeTrainSamples, stepBatch, type LatentSet } from './base-data.ts';
import { BASE_TRAIN_INPUTS } from './base-graph.ts';
import { readBasePack, writeBasePack } from './base-params.ts';
import { BASE_TRAINING, openBaseTraining, readBaseCheckpoint, saveBaseCheckpoint, trainBaseSteps, type BaseTrainingSettings } from './train-base.ts';
import { readVaePack } from './vae-params.ts';
import { worldAt } from './vae-data.ts';

// SD 1.5's block types at the smallest widths (two levels on 4 × 4 latents) and a 16-wide text encoder with the real
// vocabulary: the mechanics, not the quality.
const TINY = baseModel(
  { ...BASE_UNET_CONFIG, block_out_channels: [16, 32], down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'], up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'], norm_num_groups: 8, attention_head_dim: 2, cross_attention_dim: 16, sample_size: 4 },
  { ...BASE_TEXT_ENCODER_CONFIG, hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_hidden_layers: 1, projection_dim: 16 },
);
const SETTINGS: BaseTrainingSettings = { ...BASE_TRAINING, steps: 40, batch: 4, lr: 3e-3, warmup: 2, minLr: 3e-4, emaDecay: 0.9 };
const PACK_VAE = join(import.meta.dirname, '..', 'pack', 'vae');
const dir = mkdtempSync(join(tmpdir(), 'world-base-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Eight captioned train samples with random 4 × 4 × 4 "latents" (the graph's mechanics need no VAE). */
function tinySet(): LatentSet {
  const count = 8;
  const tokenizer = baseTokenizer();
  const inputIds = new Int32Array(count * BASE_TEXT_LENGTH);
  for (let i = 0; i < count; i++) inputIds.set(tokenizer.tokenize(sampleAt(worldAt(32), 'train', i).caption), i * BASE_TEXT_LENGTH);
  return { count, latentShape: [4, 4, 4], latents: fillGaussianFloat32(namedRng(1, 'tiny-latents'), count * 64, 1), inputIds, scalingFactor: 1, key: 'tiny' };
}

describe('world base model configs', () => {
  it('parse as diffusers/transformers configs, share the text width, and fit the pack budget', () => {
    const model = baseModel();
    expect(model.unet.config.crossAttentionDim[0]).toBe(model.text.hiddenSize);
    expect(model.unet.config.sampleSize).toBe(8);
    const counts = baseParameterCounts(model);
    expect(counts.unet).toBe(5_835_012);
    expect(counts.textEncoder).toBe(3_317_120);
    // VAE 1.9 MB + these + a hypernetwork must stay ≤ 25 MB in fp16.
    expect(counts.fp16Bytes + 1.9e6).toBeLessThan(21e6);
    expect(() => baseModel({ ...BASE_UNET_CONFIG, cross_attention_dim: 32 })).toThrow(/must equal the text encoder's hidden_size/);
  });
});

describe('world base data', () => {
  it('encodes renders with the world VAE to scaled posterior means and tokenizes their captions', async () => {
    const world = worldAt(32);
    const set = await encodeTrainSamples(PACK_VAE, world, 3);
    const { scalingFactor } = readVaePack(PACK_VAE);
    expect(set.scalingFactor).toBe(scalingFactor);
    expect(set.latentShape).toEqual([4, 8, 8]);
    expect(set.latents.length).toBe(3 * 256);
    expect(set.latents.every(Number.isFinite)).toBe(true);
    expect([...set.inputIds.subarray(2 * BASE_TEXT_LENGTH)]).toEqual(baseTokenizer().tokenize(sampleAt(world, 'train', 2).caption));
    // Latents are ≈ unit scale after the scaling factor (1 / std measured on renders).
    const rms = Math.sqrt(set.latents.reduce((s, v) => s + v * v, 0) / set.latents.length);
    expect(rms).toBeGreaterThan(0.3);
    expect(rms).toBeLessThan(3);
  }, 60_000);

  it('draws a step’s batch as a pure function of the step: noisy latents, min-SNR weights, empty captions', () => {
    const set = tinySet();
    const settings = { ...SETTINGS, batch: 64, captionDropout: 0.25 };
    const a = stepBatch(set, settings, 3);
    const b = stepBatch(set, settings, 3);
    expect(a.feeds).toEqual(b.feeds);
    expect(stepBatch(set, settings, 4).timesteps).not.toEqual(a.timesteps);
    const empty = baseTokenizer().tokenize('');
    const ids = a.feeds[BASE_TRAIN_INPUTS.inputIds]!.data as BigInt64Array;
    const weights = a.feeds[BASE_TRAIN_INPUTS.lossWeight]!.data as Float32Array;
    const dropped = a.dropped.filter(Boolean).length;
    expect(dropped).toBeGreaterThan(5);
    expect(dropped).toBeLessThan(30);
    a.dropped.forEach((drop, row) => {
      const rowIds = [...ids.subarray(row * BASE_TEXT_LENGTH, (row + 1) * BASE_TEXT_LENGTH)].map(Number);
      expect(rowIds).toEqual(drop ? empty : [...set.inputIds.subarray(a.indices[row]! * BASE_TEXT_LENGTH, (a.indices[row]! + 1) * BASE_TEXT_LENGTH)]);
      // min(SNR, 5) / SNR: 1 at high noise (SNR ≤ 5), smaller at low noise.
      expect(weights[row]).toBeGreaterThan(0);
      expect(weights[row]).toBeLessThanOrEqual(1);
      if (a.timesteps[row]! > 500) expect(weights[row]).toBe(1);
    });
    expect(Math.min(...weights)).toBeLessThan(0.1);
  });
});

describe('world base training', () => {
  it('lowers the loss on a fixed batch, keeps an EMA, resumes exactly, and exports diffusers folders', async () => {
    const set = tinySet();
    const run = await openBaseTraining(SETTINGS, set, TINY);
    const probe = stepBatch(set, SETTINGS, 0).feeds;
    const before = (await run.trainer.evaluate(probe)).loss;
    for (let i = 0; i < 15; i++) await run.trainer.step(probe);
    const after = (await run.trainer.evaluate(probe)).loss;
    await run.trainer.close();
    expect(after).toBeLessThan(before * 0.7);

    const straight = await openBaseTraining(SETTINGS, set, TINY);
    await trainBaseSteps(straight, 3);
    const checkpoint = join(dir, 'step-3.safetensors');
    await saveBaseCheckpoint(straight, checkpoint);
    await trainBaseSteps(straight, 3);
    const end = await straight.trainer.read();
    await straight.trainer.close();

    const resumed = await openBaseTraining(SETTINGS, set, TINY, checkpoint);
    expect(resumed.trainer.stepCount).toBe(3);
    await trainBaseSteps(resumed, 3);
    const continued = await resumed.trainer.read();
    const final = join(dir, 'step-6.safetensors');
    await saveBaseCheckpoint(resumed, final);
    await resumed.trainer.close();
    for (const [name, values] of Object.entries(end.params)) expect(continued.params[name], name).toEqual(values);
    for (const [name, values] of Object.entries(end.state.slots['ema']!)) expect(continued.state.slots['ema']![name], name).toEqual(values);

    await expect(openBaseTraining({ ...SETTINGS, lr: 1e-3 }, set, TINY, checkpoint)).rejects.toThrow(/trained with settings/);
    await expect(openBaseTraining(SETTINGS, { ...set, key: 'other' }, TINY, checkpoint)).rejects.toThrow(/latent cache/);

    // The checkpoint: diffusers/transformers names, the EMA beside the weights, and it differs from them.
    const saved = readBaseCheckpoint(final);
    expect(saved.step).toBe(6);
    expect(Object.keys(saved.params).sort()).toEqual([...unetInventory(TINY.unet), ...clipTextInventory(TINY.text)].map((p) => p.name).sort());
    expect(Object.keys(loadCheckpoint(final).optimizer.state.slots).sort()).toEqual(['ema', 'm', 'v']);
    expect(saved.ema['conv_out.weight']).not.toEqual(saved.params['conv_out.weight']);

    // --init: a new run starts from the checkpoint's trained weights, with fresh moments, EMA and schedule.
    const warm = await openBaseTraining({ ...SETTINGS, init: final }, set, TINY);
    const started = await warm.trainer.read();
    await warm.trainer.close();
    expect(warm.trainer.stepCount).toBe(0);
    for (const [name, values] of Object.entries(saved.params)) expect(started.params[name], name).toEqual(values);
    expect(started.state.slots['ema']!['conv_out.weight']).toEqual(saved.params['conv_out.weight']);
    expect(started.state.slots['m']!['conv_out.weight']!.every((v) => v === 0)).toBe(true);

    const packDir = join(dir, 'pack');
    const files = writeBasePack(packDir, saved.model, saved.ema, 'F16');
    expect(files.unetBytes).toBeGreaterThan(0);
    const unetJson = JSON.parse(readFileSync(join(packDir, 'unet', 'config.json'), 'utf8'));
    const textJson = JSON.parse(readFileSync(join(packDir, 'text_encoder', 'config.json'), 'utf8'));
    expect(planUnet(parseUnetConfig(unetJson)).config.blockOutChannels).toEqual([16, 32]);
    expect(parseClipTextConfig(textJson).hiddenSize).toBe(16);
    const reread = readBasePack(packDir);
    for (const [name, values] of Object.entries(saved.ema)) {
      const back = reread.params[name]!;
      // fp16: relative error ≤ 2^-11 for normal values.
      values.forEach((v, i) => expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 1e-7));
    }
  }, 120_000);
});
