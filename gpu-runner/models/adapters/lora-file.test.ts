import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors, type Tensor } from '../../io/safetensors.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import type { AdaptableLinear } from '../inventory.ts';
import { readLoraFile } from './lora-file.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-lora-file-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const layer: AdaptableLinear = { name: 'blocks.0.attn.to_q', inFeatures: 3, outFeatures: 2, bias: false, kind: 'attn1.to_q' };
const f32 = (shape: number[]): Tensor => ({ dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) });

function file(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): string {
  const path = join(scratch, `${Object.keys(tensors).length}-${Math.random().toString(36).slice(2)}.safetensors`);
  writeSafetensors(path, tensors, metadata);
  return path;
}

describe('reading PEFT LoRA files', () => {
  it('reads the fixtures: rank 1 alpha 1 → scale 1, rank 4 alpha 2 → scale 0.5, all 80 layers', async () => {
    const { openUnetFolder } = await import('../checkpoint/diffusers-folder.ts');
    const { unetAttentionLinears } = await import('../unet/inventory.ts');
    const targets = unetAttentionLinears(openUnetFolder(referencePath('sd15-tiny', 'unet')).plan);
    const rank1 = readLoraFile(referencePath('sd15-tiny', 'lora', 'lora_rank1.safetensors'), targets);
    const rank4 = readLoraFile(referencePath('sd15-tiny', 'lora', 'lora_rank4.safetensors'), targets);
    expect([rank1.scale, rank1.layers.size, rank4.scale, rank4.layers.size]).toEqual([1, 80, 0.5, 80]);
    expect(rank4.layers.get(targets[0]!.name)!.rank).toBe(4);
  });

  it('takes the stated scale without alpha, and 1 without either', () => {
    const pair = { [`${layer.name}.lora_A.weight`]: f32([2, 3]), [`${layer.name}.lora_B.weight`]: f32([2, 2]) };
    expect(readLoraFile(file(pair, { scale: '0.25' }), [layer]).scale).toBe(0.25);
    expect(readLoraFile(file(pair), [layer]).scale).toBe(1);
    expect(readLoraFile(file(pair, { alpha: '8' }), [layer]).scale).toBe(4);
  });

  it('names an unknown layer, a wrong shape, a missing half and a foreign key', () => {
    expect(() => readLoraFile(file({ 'other.lora_A.weight': f32([1, 3]) }), [layer])).toThrow(/"other", which is not an adaptable layer/);
    expect(() => readLoraFile(file({ [`${layer.name}.lora_A.weight`]: f32([1, 4]) }), [layer])).toThrow(/is \[1, 4\], expected \[1, 3\]/);
    expect(() => readLoraFile(file({ [`${layer.name}.lora_A.weight`]: f32([1, 3]) }), [layer])).toThrow(/needs both lora_A and lora_B/);
    expect(() => readLoraFile(file({ 'lora_unet_x.lora_down.weight': f32([1, 3]) }), [layer])).toThrow(/not a PEFT LoRA key/);
  });
});
