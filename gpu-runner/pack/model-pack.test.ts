// A pack whose weights come as users download them: fp16 variant files only, chosen by detection or by name.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GenerationParams } from '../../contract/index.ts';
import { float32ToFloat16Bits, loadSafetensors, type Tensor, writeSafetensors } from '../io/safetensors.ts';
import { ModelPackExecutor } from '../server/executors/model-pack-executor.ts';
import type { ExecutionContext } from '../server/jobs/executor.ts';
import { loadModelPack } from './model-pack.ts';
import { ensureTinyPack } from './write-tiny-pack.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-model-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of the tiny pack whose networks hold only `<stem>.fp16.safetensors`. */
function fp16Pack(name: string): string {
  const dir = join(scratch, name);
  cpSync(ensureTinyPack(), dir, { recursive: true });
  for (const [component, stem] of [['unet', 'diffusion_pytorch_model'], ['text_encoder', 'model'], ['vae', 'diffusion_pytorch_model']] as const) {
    const path = join(dir, component, `${stem}.safetensors`);
    const half = new Map<string, Tensor>();
    for (const [name, tensor] of loadSafetensors(path).tensors) {
      half.set(name, { dtype: 'F16', shape: tensor.shape, data: float32ToFloat16Bits(tensor.data as Float32Array) });
    }
    writeSafetensors(join(dir, component, `${stem}.fp16.safetensors`), half);
    rmSync(path);
  }
  return dir;
}

describe('loadModelPack with weight variants', () => {
  it('loads a pack of fp16 variant files by detection or by name, and names a variant it does not hold', async () => {
    const dir = fp16Pack('loaded');
    const detected = await loadModelPack(dir, () => undefined, 'inline');
    expect(detected.model.unet.weights.dtype).toBe('float16');
    expect(detected.model.vae.weights.dtype).toBe('float16');
    const named = await loadModelPack(dir, () => undefined, 'inline', { variant: 'fp16' });
    expect(named.sha256).toBe(detected.sha256);
    await expect(loadModelPack(dir, () => undefined, 'inline', { variant: 'bf16' })).rejects.toThrow(/holds variant\(s\) "fp16" of .*, not "bf16"/);
  });

  it('personalizes and generates from fp16 weights referenced in place (widened inside the graphs)', async () => {
    const executor = new ModelPackExecutor({ modelDir: fp16Pack('external'), weights: 'external', threads: 1 });
    const context: ExecutionContext = { signal: new AbortController().signal, reportProgress: () => undefined };
    try {
      await executor.warmup();
      const face = { width: 64, height: 64, channels: 3 as const, data: new Uint8Array(64 * 64 * 3).map((_, i) => (i * 13) % 251) };
      const personalized = await executor.personalize(
        {
          jobId: 'job_fp16',
          method: 'hyperdreambooth',
          images: [face],
          finetune: { steps: 2, rank: 1, relax: 'lora', seed: 0, identifier_token: '[V]' },
          outputs: [{ format: 'lidb', dtype: 'fp32' }],
        },
        context,
      );
      const weights = { format: 'lidb' as const, dtype: 'fp32' as const, bytes: personalized.files[0]!.bytes };
      const params = GenerationParams.parse({ prompt: 'a [V] face', steps: 2, width: 64, height: 64, seed: 1 });
      const generated = await executor.generate({ jobId: 'job_fp16_gen', weights, baseModelId: personalized.baseModelId, params }, context);
      const pixels = generated.images[0]!.image.data;
      expect(pixels.length).toBe(64 * 64 * 3);
      expect(new Set(pixels).size).toBeGreaterThan(1);
    } finally {
      await executor.close();
    }
  });
});
