// The model pack executor called directly (no service) on copies of the tiny pack.
import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationParams } from '../../../contract/index.ts';
import { parseSafetensors, serializeSafetensors, type Tensor } from '../../io/safetensors.ts';
import { ensureTinyPack } from '../../pack/write-tiny-pack.ts';
import { InvalidInputError } from '../jobs/executor.ts';
import { ModelPackExecutor } from './model-pack-executor.ts';
import { personalizedLidbFile, TEST_CONTEXT as context, TEST_FACE as face } from './testing/tiny-personalization.ts';

const params = GenerationParams.parse({ prompt: 'a [V] face', steps: 2, width: 64, height: 64, seed: 3 });

let root: string;
let packDir: string;
let inline: ModelPackExecutor;
let lidbFile: Uint8Array;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'hdb-pack-'));
  packDir = join(root, 'pack');
  cpSync(ensureTinyPack(), packDir, { recursive: true });
  inline = new ModelPackExecutor({ modelDir: packDir, weights: 'inline', threads: 1 });
  await inline.warmup();
  lidbFile = await personalizedLidbFile(inline);
});

afterAll(async () => {
  await inline?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('ModelPackExecutor', () => {
  it('personalizes with prior preservation (class images drawn by the pack once), reporting every step', async () => {
    const steps: number[] = [];
    const result = await inline.personalize(
      {
        jobId: 'job_prior',
        method: 'lidb-zero',
        images: [face],
        finetune: { steps: 3, rank: 1, relax: 'lora', seed: 0, identifier_token: '[V]', prior_preservation_weight: 0.5 },
        outputs: [{ format: 'lidb', dtype: 'fp32' }],
      },
      { ...context, reportProgress: (step) => steps.push(step) },
    );
    expect(steps).toEqual([1, 2, 3]);
    expect(result.files[0]!.bytes.byteLength).toBeGreaterThan(0);
  });

  it('generates the same pixels with weights referenced in the checkpoint (external data) as with weights copied in', async () => {
    const external = new ModelPackExecutor({ modelDir: packDir, weights: 'external', threads: 1 });
    await external.warmup();
    try {
      const weights = { format: 'lidb' as const, dtype: 'fp32' as const, bytes: lidbFile };
      const a = await inline.generate({ jobId: 'job_a', weights, baseModelId: 'x', params }, context);
      const b = await external.generate({ jobId: 'job_b', weights, baseModelId: 'x', params }, context);
      expect(b.images[0]!.image.data).toEqual(a.images[0]!.image.data);
      expect(readdirSync(join(packDir, 'unet')).some((name) => name.endsWith('.onnx'))).toBe(true);
    } finally {
      await external.close();
    }
  });

  it('refuses weights made for another base model', async () => {
    const otherDir = join(root, 'other');
    cpSync(packDir, otherDir, { recursive: true });
    appendFileSync(join(otherDir, 'unet', 'config.json'), '\n');
    const other = new ModelPackExecutor({ modelDir: otherDir, threads: 1 });
    await other.warmup();
    try {
      const attempt = other.generate({ jobId: 'job_c', weights: { format: 'lidb', dtype: 'fp32', bytes: lidbFile }, baseModelId: 'x', params }, context);
      await expect(attempt).rejects.toBeInstanceOf(InvalidInputError);
      await expect(attempt).rejects.toThrow(/made for base model/);
    } finally {
      await other.close();
    }
  });

  it('refuses a LoRA export as generation weights, and a PEFT file for textual inversion, as invalid input', async () => {
    await expect(
      inline.generate({ jobId: 'job_d', weights: { format: 'kohya', dtype: 'fp16', bytes: lidbFile }, baseModelId: 'x', params }, context),
    ).rejects.toBeInstanceOf(InvalidInputError);
    const peft = inline.personalize(
      { jobId: 'job_e', method: 'textual-inversion', images: [face], finetune: { steps: 1, rank: 1, relax: 'lora', seed: 0, identifier_token: '[V]' }, outputs: [{ format: 'peft', dtype: 'fp16' }] },
      context,
    );
    await expect(peft).rejects.toBeInstanceOf(InvalidInputError);
    await expect(peft).rejects.toThrow('method textual-inversion has no peft file; it writes lidb, kohya');
  });

  it('refuses textual-inversion rows that do not fit the text encoder', async () => {
    const made = await inline.personalize(
      { jobId: 'job_f', method: 'textual-inversion', images: [face], finetune: { steps: 1, rank: 1, relax: 'lora', seed: 0, identifier_token: '[V]' }, outputs: [{ format: 'lidb', dtype: 'fp32' }] },
      context,
    );
    expect(made.rank).toBe(0);
    const parsed = parseSafetensors(made.files[0]!.bytes);
    const rows = parsed.tensors.get('textual_inversion.embedding')!;
    const [vectors, hidden] = rows.shape as [number, number];
    const generateWith = (tensors: Map<string, Tensor>, metadata: Record<string, string>) =>
      inline.generate({ jobId: 'job_g', weights: { format: 'lidb', dtype: 'fp32', bytes: serializeSafetensors(tensors, metadata) }, baseModelId: 'x', params }, context);
    const narrow = new Map(parsed.tensors).set('textual_inversion.embedding', { dtype: 'F32', shape: [vectors, hidden - 1], data: new Float32Array(vectors * (hidden - 1)) });
    await expect(generateWith(narrow, parsed.header.metadata)).rejects.toThrow(/this text encoder's width \d+ are/);
    const outside = { ...parsed.header.metadata, textual_inversion_token_ids: JSON.stringify(Array.from({ length: vectors }, (_, i) => 10_000_000 + i)) };
    await expect(generateWith(parsed.tensors, outside)).rejects.toThrow(/outside the vocabulary/);
    const repeated = { ...parsed.header.metadata, textual_inversion_token_ids: JSON.stringify(Array.from({ length: vectors }, () => 7)) };
    await expect(generateWith(parsed.tensors, repeated)).rejects.toThrow(/must be distinct/);
  });
});
