// A pack whose weights come as users download them: fp16 variant files only, chosen by detection or by name.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float32ToFloat16Bits, loadSafetensors, type Tensor, writeSafetensors } from '../io/safetensors.ts';
import { loadModelPack } from './model-pack.ts';
import { ensureTinyPack } from './write-tiny-pack.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-model-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of the tiny pack whose networks hold only `<stem>.fp16.safetensors`. */
function fp16Pack(): string {
  const dir = join(scratch, 'fp16');
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
    const dir = fp16Pack();
    const detected = await loadModelPack(dir, () => undefined, 'inline');
    expect(detected.model.unet.weights.dtype).toBe('float16');
    expect(detected.model.vae.weights.dtype).toBe('float16');
    const named = await loadModelPack(dir, () => undefined, 'inline', { variant: 'fp16' });
    expect(named.sha256).toBe(detected.sha256);
    await expect(loadModelPack(dir, () => undefined, 'inline', { variant: 'bf16' })).rejects.toThrow(/holds variant\(s\) "fp16" of .*, not "bf16"/);
  });
});
