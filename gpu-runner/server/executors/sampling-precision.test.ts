// RUNNER_SAMPLING_PRECISION through the runner's real sampling path: the model pack executor generates with
// personalized (LiDB + LoRA relax) weights from fp16 graphs, the images stay near the fp32 ones, and the session
// kinds report the precision next to the provider. On the CPU provider, which computes fp16 graphs in float32 behind
// Casts (gpu-runner/onnx/runtime/README.md), this checks the graphs and the weights' rounding, not CUDA's fp16 maths.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationParams } from '../../../contract/index.ts';
import { ensureTinyPack } from '../../pack/write-tiny-pack.ts';
import { loadConfig } from '../config.ts';
import { ModelPackExecutor } from './model-pack-executor.ts';
import { personalizedLidbFile, TEST_CONTEXT as context } from './testing/tiny-personalization.ts';

const params = GenerationParams.parse({ prompt: 'a [V] face', steps: 3, width: 64, height: 64, seed: 7, scheduler: 'euler' });
const SAMPLER_KINDS = ['text-encoder', 'unet', 'vae-decoder'] as const;
/**
 * Bounds on |fp16 − fp32| in 8-bit levels. Measured here (tiny pack, 3 Euler steps, CPU provider): max 1, mean 0.07.
 * One level is 2/255 ≈ 16 × 2^-11 of the [−1, 1] image, and each network's own gap is below 2 × 2^-11 of its output
 * scale (`../../models/precision.test.ts`), so most pixels round to the same level; a few levels of margin allow
 * for the sampler carrying the UNet's gap from step to step.
 */
const MAX_PIXEL_GAP = 4;
const MEAN_PIXEL_GAP = 0.5;

/** The runner's configuration for `precision`, parsed as main.ts parses the environment. */
const configured = (precision: string) =>
  loadConfig({ RUNNER_SECRET: 'x'.repeat(32), RUNNER_EXECUTION_PROVIDER: 'cpu', RUNNER_SAMPLING_PRECISION: precision });

let root: string;
let lidbFile: Uint8Array;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'hdb-precision-'));
  cpSync(ensureTinyPack(), join(root, 'pack'), { recursive: true });
  const executor = new ModelPackExecutor({ modelDir: join(root, 'pack'), weights: 'inline', threads: 1, executionProvider: 'cpu' });
  await executor.warmup();
  try {
    lidbFile = await personalizedLidbFile(executor);
  } finally {
    await executor.close();
  }
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function generateAt(precision: string) {
  const config = configured(precision);
  const executor = new ModelPackExecutor({
    modelDir: join(root, 'pack'),
    weights: 'inline',
    threads: 1,
    executionProvider: config.executionProvider,
    samplingPrecision: config.samplingPrecision,
  });
  await executor.warmup();
  try {
    const weights = { format: 'lidb' as const, dtype: 'fp32' as const, bytes: lidbFile };
    const { images } = await executor.generate({ jobId: `job_${precision}`, weights, baseModelId: 'x', params }, context);
    return { pixels: images[0]!.image.data, kinds: executor.sessionKinds() };
  } finally {
    await executor.close();
  }
}

describe('RUNNER_SAMPLING_PRECISION', () => {
  it('is validated with the other runner settings', () => {
    expect(configured('fp16').samplingPrecision).toBe('fp16');
    expect(loadConfig({ RUNNER_SECRET: 'x'.repeat(32) }).samplingPrecision).toBe('auto');
    expect(() => configured('bf16')).toThrow(/RUNNER_SAMPLING_PRECISION/);
  });

  it('fp16 generates with personalized weights within a few 8-bit levels of fp32, and says so per session kind', async () => {
    const fp32 = await generateAt('fp32');
    const fp16 = await generateAt('fp16');
    for (const kind of SAMPLER_KINDS) {
      expect(fp32.kinds[kind]).toMatchObject({ executionProvider: 'cpu', precision: 'fp32' });
      expect(fp16.kinds[kind]).toMatchObject({ executionProvider: 'cpu', precision: 'fp16' });
    }
    let maxGap = 0;
    let sumGap = 0;
    for (let i = 0; i < fp32.pixels.length; i++) {
      const gap = Math.abs(fp16.pixels[i]! - fp32.pixels[i]!);
      maxGap = Math.max(maxGap, gap);
      sumGap += gap;
    }
    expect(maxGap).toBeLessThanOrEqual(MAX_PIXEL_GAP);
    expect(sumGap / fp32.pixels.length).toBeLessThan(MEAN_PIXEL_GAP);
  });

  it('auto is fp32 on the CPU', async () => {
    const { kinds } = await generateAt('auto');
    for (const kind of SAMPLER_KINDS) expect(kinds[kind]).toMatchObject({ executionProvider: 'cpu', precision: 'fp32' });
  });
});
