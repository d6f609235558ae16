import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderSample, sampleAt } from '../dataset.ts';
import { classifyColour, colourAccuracy, EYE_COLOUR, HAIR_COLOUR } from './colour-probe.ts';
import { hairHueError, hairMask, hueDistance, hueSaturation } from './hair-hue.ts';
import { WORLD_VAE_CONFIG, worldVae } from './vae-config.ts';
import { eyePixelWeights, worldAt } from './vae-data.ts';
import { VAE_TRAIN_INPUTS } from './vae-graph.ts';
import { float32Tensor } from '../../onnx/runtime/index.ts';
import { NO_NUISANCE } from '../attributes.ts';
import { runVaeGate } from './vae-gate.ts';
import { readVaePack, writeVaePack } from './vae-params.ts';
import { VaeReconstructor, scalingFactorOf } from './vae-reconstruct.ts';
import { batchFeeds, openVaeTraining, readVaeCheckpoint, saveVaeCheckpoint, trainVaeSteps, VAE_TRAINING, type VaeTrainingSettings } from './train-vae.ts';

// SD 1.5's VAE topology at the smallest widths (two levels, ×2) and a tiny batch: the mechanics, not the quality.
const TINY = worldVae({ ...WORLD_VAE_CONFIG, block_out_channels: [8, 16], down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D'], up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D'], norm_num_groups: 4 });
const SETTINGS: VaeTrainingSettings = { ...VAE_TRAINING, steps: 12, batch: 4, lr: 3e-3, warmup: 2, minLr: 3e-4 };
const dir = mkdtempSync(join(tmpdir(), 'world-vae-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('world VAE training', () => {
  it('lowers the loss on a fixed batch in a few steps, and resumes from a checkpoint exactly', async () => {
    const run = await openVaeTraining(SETTINGS, TINY);
    const probe = batchFeeds(run, 0);
    const before = (await run.trainer.evaluate(probe)).loss;
    await trainVaeSteps(run, 4);
    const checkpoint = join(dir, 'step-4.safetensors');
    await saveVaeCheckpoint(run, checkpoint);
    await trainVaeSteps(run, 4);
    const after = (await run.trainer.evaluate(probe)).loss;
    const straight = (await run.trainer.read()).params;
    await run.trainer.close();
    expect(after).toBeLessThan(before * 0.9);

    const resumed = await openVaeTraining(SETTINGS, TINY, checkpoint);
    expect(resumed.trainer.stepCount).toBe(4);
    await trainVaeSteps(resumed, 4);
    const continued = (await resumed.trainer.read()).params;
    await resumed.trainer.close();
    for (const [name, values] of Object.entries(straight)) expect(continued[name], name).toEqual(values);

    await expect(openVaeTraining({ ...SETTINGS, lr: 1e-3 }, TINY, checkpoint)).rejects.toThrow(/trained with settings/);
  }, 60_000);

  it('runs the gate on a checkpoint: figures, a grid PNG, and the pack files round-trip', async () => {
    const { vae, params, step } = readVaeCheckpoint(join(dir, 'step-4.safetensors'));
    expect(step).toBe(4);
    expect(vae.json).toEqual(TINY.json);
    const grid = join(dir, 'grid.png');
    const result = await runVaeGate(vae, params, { count: 16, grid });
    expect(result.samples).toBe(16);
    expect(result.psnrDb).toBeGreaterThan(0);
    expect(result.hueSamples).toBeGreaterThan(0);
    expect(result.eyeColourAgreement).toBeGreaterThanOrEqual(0);
    expect(result.pixelColourAccuracy['eye_colour']!.visible).toBeGreaterThan(0);
    expect(result.passed).toBe(false); // four steps of a tiny VAE cannot keep identity
    expect(readFileSync(grid).subarray(1, 4).toString()).toBe('PNG');

    const reconstructor = await VaeReconstructor.open(vae, params);
    const { latents } = await reconstructor.run([sampleAt(worldAt(32), 'train', 0).image, sampleAt(worldAt(32), 'train', 1).image]);
    await reconstructor.close();
    const scale = scalingFactorOf(latents);
    expect(Number.isFinite(scale) && scale > 0).toBe(true);
    const packDir = join(dir, 'vae');
    writeVaePack(packDir, vae, params, scale, 'F16');
    const reread = readVaePack(packDir);
    expect(reread.scalingFactor).toBeCloseTo(scale, 6);
    const name = 'decoder.conv_out.weight';
    reread.params[name]!.forEach((v, i) => expect(v).toBeCloseTo(params[name]![i]!, 2));
    expect(existsSync(join(packDir, 'config.json'))).toBe(true);
  }, 60_000);

  it('starts a fine-tune from a pack (--init): the fp16 weights upcast, and refuses a pack of another VAE', async () => {
    const packDir = join(dir, 'vae');
    const pack = readVaePack(packDir);
    const run = await openVaeTraining({ ...SETTINGS, init: packDir }, TINY);
    const { params } = await run.trainer.read();
    await run.trainer.close();
    for (const [name, values] of Object.entries(pack.params)) expect(params[name], name).toEqual(values);
    const other = worldVae({ ...TINY.json, block_out_channels: [8, 8], norm_num_groups: 4 });
    await expect(openVaeTraining({ ...SETTINGS, init: join(packDir, 'diffusion_pytorch_model.safetensors') }, other)).rejects.toThrow(/not the one being trained/);
  }, 60_000);
});

describe('eye-weighted reconstruction loss', () => {
  it('weights exactly the iris pixels, and with weights of 1 gives the unweighted loss', async () => {
    const plain = sampleAt(worldAt(32), 'test', 0);
    const sample = { ...plain, context: { ...plain.context, accessory: 'none' as const, style: 'photo' as const }, nuisance: NO_NUISANCE };
    const image = renderSample(sample.identity, sample.context, sample.nuisance, 32);
    const weights = eyePixelWeights([{ ...sample, image }], 10);
    const eyePixels = weights.filter((w) => w === 11).length;
    // Two irises of radius 0.14 face units at 12.8 px per unit: ≈ 2 · π · 1.8² ≈ 20 px, plus anti-aliased rims.
    expect(eyePixels).toBeGreaterThan(15);
    expect(eyePixels).toBeLessThan(50);
    expect(weights.filter((w) => w !== 1 && w !== 11).length).toBe(0);

    const run = await openVaeTraining(SETTINGS, TINY);
    const weighted = await openVaeTraining({ ...SETTINGS, eyeWeight: 10 }, TINY);
    const feeds = batchFeeds(run, 0);
    expect(Object.keys(batchFeeds(weighted, 0))).toContain(VAE_TRAIN_INPUTS.pixelWeights);
    const ones = float32Tensor(new Float32Array(SETTINGS.batch * 32 * 32).fill(1), [SETTINGS.batch, 1, 32, 32]);
    const unweighted = (await run.trainer.evaluate(feeds)).loss;
    const withOnes = (await weighted.trainer.evaluate({ ...feeds, [VAE_TRAIN_INPUTS.pixelWeights]: ones })).loss;
    const withEyes = (await weighted.trainer.evaluate(batchFeeds(weighted, 0))).loss;
    await run.trainer.close();
    await weighted.trainer.close();
    expect(withOnes).toBeCloseTo(unweighted, 5);
    expect(withEyes).toBeGreaterThan(unweighted);
  }, 60_000);
});

describe('colour probe', () => {
  it('classifies every render as its own eye and hair colour, and a repainted render as the new colour', () => {
    const samples = Array.from({ length: 24 }, (_, i) => sampleAt(worldAt(32), 'test', i));
    for (const attribute of [EYE_COLOUR, HAIR_COLOUR]) {
      const own = colourAccuracy(attribute, samples, samples.map((s) => s.image));
      expect(own.accuracy, attribute.name).toBe(1);
      expect(own.visible, attribute.name).toBeGreaterThan(12);
    }
    const sample = samples.find((s) => classifyColour(EYE_COLOUR, s, s.image) !== undefined)!;
    const other = (sample.identity.eyeColour + 1) % 4;
    const repainted = renderSample(EYE_COLOUR.with(sample.identity, other), sample.context, sample.nuisance, 32);
    expect(classifyColour(EYE_COLOUR, sample, repainted)).toBe(other);
  });
});

describe('hair hue', () => {
  it('finds hair pixels by repainting, and a render has no hue error against itself', () => {
    const world = worldAt(32);
    const withHue = Array.from({ length: 40 }, (_, i) => sampleAt(world, 'test', i)).find((s) => hairHueError(s, s.image) !== undefined)!;
    expect(hairMask(withHue).length).toBeGreaterThan(4);
    expect(hairHueError(withHue, withHue.image)).toBe(0);
  });

  it('measures hue on the colour wheel', () => {
    expect(hueSaturation([1, 0, 0]).hue).toBe(0);
    expect(hueSaturation([0, 1, 0]).hue).toBe(120);
    expect(hueSaturation([0, 0, 1]).hue).toBe(240);
    expect(hueSaturation([0.5, 0.5, 0.5]).saturation).toBe(0);
    expect(hueDistance(350, 10)).toBe(20);
  });
});
