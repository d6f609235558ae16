// The SD 1.5 model parity checks on the reference fixtures: every discovered case within the README tolerance, and a
// corrupted fixture fails.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSafetensors, writeSafetensors } from '../io/safetensors.ts';
import type { ParityCheck, ParityResult } from './check.ts';
import { loraParity } from './lora.ts';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import { textEncoderParity } from './text-encoder.ts';
import { unetParity } from './unet.ts';
import { vaeParity } from './vae.ts';

async function collect(check: ParityCheck, dir: string): Promise<ParityResult[]> {
  const results: ParityResult[] = [];
  for await (const result of check.run(dir)) results.push(result);
  return results;
}

const failing = (results: ParityResult[]) => results.filter((r) => !r.ok).map((r) => JSON.stringify(r));

describe('SD 1.5 model parity on sd15-tiny', () => {
  const dir = referencePath('sd15-tiny');
  const results = new Map<string, ParityResult[]>();
  beforeAll(async () => {
    for (const check of [unetParity, textEncoderParity, vaeParity, loraParity]) {
      expect(check.appliesTo(dir)).toBe(true);
      results.set(check.component, await collect(check, dir));
    }
  });

  it('UNet: outputs and every per-block activation of every case, timestep as int64 and as float', () => {
    const unet = results.get('unet')!;
    expect(failing(unet)).toEqual([]);
    expect(unet.filter((r) => /^case\d+$/.test(r.case)).length).toBeGreaterThanOrEqual(2);
    expect(unet.filter((r) => r.case.includes('.debug.')).length).toBeGreaterThanOrEqual(2 * 13);
    expect(unet.some((r) => r.case.endsWith('.timestep_f32'))).toBe(true);
  });

  it('text encoder: last hidden state, pooled output and hidden states', () => {
    const text = results.get('text_encoder')!;
    expect(failing(text)).toEqual([]);
    expect(text.map((r) => r.case)).toEqual(expect.arrayContaining(['default', 'default.pooler_output', 'default.debug.hidden_states.2']));
  });

  it('VAE: encode (mean, logvar, std, scaled mean), decode, pipeline decode and activations', () => {
    const vae = results.get('vae')!;
    expect(failing(vae)).toEqual([]);
    expect(vae.map((r) => r.case)).toEqual(
      expect.arrayContaining([
        'default.encode.mean',
        'default.encode.logvar',
        'default.encode.std',
        'default.encode.mean_scaled',
        'default.decode.sample',
        'default.decode_pipeline_latents.sample',
      ]),
    );
  });

  it('LoRA: rank 1 and rank 4 (with their scales) and the base model from one session per case, and the merge', () => {
    const lora = results.get('lora')!;
    expect(failing(lora)).toEqual([]);
    for (const c of ['case1', 'case2']) {
      expect(lora.map((r) => r.case)).toEqual(expect.arrayContaining([`${c}.base`, `${c}.lora_rank1`, `${c}.lora_rank4`]));
    }
    expect(lora.filter((r) => r.case.includes('.merge.')).length).toBe(4);
  });
});

describe('a corrupted fixture fails', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'hdb-parity-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('reports the perturbed output and activation, and passes the rest', async () => {
    const dir = join(scratch, 'fixture');
    cpSync(referencePath('sd15-tiny', 'unet'), join(dir, 'unet'), { recursive: true });
    const ioPath = join(dir, 'unet', 'io.safetensors');
    const { tensors, metadata } = loadSafetensors(ioPath);
    for (const name of ['case2.out_sample', 'case1.debug.mid_block']) {
      const data = Float32Array.from(tensors.get(name)!.data as Float32Array);
      data[3] = data[3]! + 1e-2;
      tensors.set(name, { ...tensors.get(name)!, data });
    }
    writeSafetensors(ioPath, tensors, metadata);
    const results = await collect(unetParity, dir);
    expect(results.filter((r) => !r.ok).map((r) => r.case).sort()).toEqual(['case1.debug.mid_block', 'case2', 'case2.timestep_f32']);
    expect(results.find((r) => r.case === 'case2')!.maxAbsErr).toBeCloseTo(1e-2, 4);
  });
});
