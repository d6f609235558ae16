// The world pack's assembly and its use by the product, on a stand-in (random UNet/text encoder of the world configs,
// the committed world VAE): a complete diffusers folder within the 25 MB budget, the runner's default once complete,
// and a personalization then a generation through the runner's executor at the world's shapes (32 px, 8 × 8 latents).
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationParams } from '../../contract/index.ts';
import { defaultModelDir } from './default-pack.ts';
import { TINY_PACK_ID } from './tiny-config.ts';
import { ensureTinyPack } from './write-tiny-pack.ts';
import { ModelPackExecutor } from '../server/executors/model-pack-executor.ts';
import { loadModelPack } from './model-pack.ts';
import { InvalidInputError, type ExecutionContext } from '../server/jobs/executor.ts';
import { identityIds, DEFAULT_WORLD } from '../world/dataset.ts';
import { toRgbBytes } from '../world/png.ts';
import { referenceImage } from '../world/benchmark/prompts.ts';
import { modelCard } from '../world/packaging/model-card.ts';
import { writeStandInPack } from '../world/packaging/stand-in.ts';
import { assertPackWithinBudget, isCompletePack, missingPackFiles, packBytes, WORLD_PACK_DIR, WORLD_PACK_ID, WORLD_PACK_MAX_BYTES } from './world-pack.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-world-pack-'));
const standIn = writeStandInPack(join(root, 'stand-in'));
const context: ExecutionContext = { signal: new AbortController().signal, reportProgress: () => undefined };

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the world pack', () => {
  it('the committed pack folder stays within the 25 MB budget, whatever stages have landed', () => {
    expect(packBytes(WORLD_PACK_DIR)).toBeGreaterThan(0);
    expect(assertPackWithinBudget(WORLD_PACK_DIR)).toBeLessThanOrEqual(WORLD_PACK_MAX_BYTES);
  });

  it('a stand-in with every stage at its final size (fp16 UNet and text encoder, VAE, hypernetwork) is complete and within budget', () => {
    expect(missingPackFiles(standIn)).toEqual([]);
    expect(isCompletePack(standIn)).toBe(true);
    expect(assertPackWithinBudget(standIn)).toBeLessThanOrEqual(WORLD_PACK_MAX_BYTES);
    expect(() => assertPackWithinBudget(standIn, 1_000_000)).toThrow(/over its 1\.00 MB budget/);
  });

  it('loads with its own id (not the tiny pack’s), 32 px images, 8 × 8 latents and its hypernetwork', async () => {
    const pack = await loadModelPack(standIn, () => {});
    expect(pack.id).toBe(WORLD_PACK_ID);
    expect(pack.id).not.toBe(TINY_PACK_ID);
    expect(pack.model.resolution).toBe(32);
    expect(pack.nativeResolution).toBe(32);
    expect(pack.model.unet.plan.config.sampleSize).toBe(8);
    expect(pack.hypernetwork).toBe('checkpoint');
    expect(pack.model.layers.length).toBeGreaterThan(0);
  });

  it('keeps its digest when the model card’s figures change (card/ is documentation), not when a config does', async () => {
    const copy = join(root, 'edited');
    cpSync(standIn, copy, { recursive: true });
    const before = (await loadModelPack(copy, () => {})).sha256;
    mkdirSync(join(copy, 'card'), { recursive: true });
    writeFileSync(join(copy, 'card', 'notes.json'), '{"figure":1}\n');
    expect((await loadModelPack(copy, () => {})).sha256).toBe(before);
    appendFileSync(join(copy, 'unet', 'config.json'), '\n');
    expect((await loadModelPack(copy, () => {})).sha256).not.toBe(before);
  });

  it('has a model card written from its records: status, missing parts, the base gate when measured', async () => {
    const card = await modelCard(standIn);
    expect(card).toContain(`# ${WORLD_PACK_ID}`);
    expect(card).toContain('Status: complete');
    expect(card).toContain('widths (64, 128, 128)');
    expect(card).toContain('Gate: not measured yet');
    expect(card).toContain('untrained (heads N(0, 1e−3)');
    const partial = join(root, 'partial');
    cpSync(standIn, partial, { recursive: true });
    rmSync(join(partial, 'unet'), { recursive: true });
    expect(await modelCard(partial)).toContain('incomplete, missing `unet/config.json`, `unet/diffusion_pytorch_model.safetensors`');
    expect(defaultModelDir(partial)).toBe(ensureTinyPack());
  });

  it('shows the base gate’s figures on the card, flagged stale once the weights change', async () => {
    const copy = join(root, 'gated');
    cpSync(standIn, copy, { recursive: true });
    const { sha256 } = await loadModelPack(copy, () => {});
    const heads = [{ name: 'style', group: 'context', accuracy: 0.75, chance: 1 / 3, threshold: 0.6, lift: 0.625, rendersAccuracy: 1, gated: true, passed: true }];
    const record = {
      pack: { sha256 },
      settings: { identities: 16, contexts: 9, imagesPerPrompt: 1, samplerSteps: 25, guidanceScale: 4, seed: 1 },
      rule: { gatedHeads: ['style'], passLift: 0.4 },
      passed: true,
      images: 144,
      seconds: 100,
      heads,
    };
    mkdirSync(join(copy, 'card'), { recursive: true });
    writeFileSync(join(copy, 'card', 'base-gate.json'), JSON.stringify(record));
    const card = await modelCard(copy);
    expect(card).toContain('| style | context | 75.0% | 33.3% | 60.0% | 100.0% | pass |');
    expect(card).toContain('**passed**');
    expect(card).toContain('Measured on these weights');
    appendFileSync(join(copy, 'text_encoder', 'config.json'), '\n');
    expect(await modelCard(copy)).toContain('**Stale**');
  });

  it('is the default pack once complete; the tiny pack otherwise', () => {
    expect(defaultModelDir(standIn)).toBe(standIn);
    expect(defaultModelDir(join(root, 'missing'))).toBe(ensureTinyPack());
  });
});

describe('the runner on the world pack', () => {
  let executor: ModelPackExecutor;
  let lidbFile: Uint8Array;
  const [testId] = identityIds(DEFAULT_WORLD, 'test');
  const face = referenceImage(DEFAULT_WORLD, testId!, 32, 0);

  beforeAll(async () => {
    executor = new ModelPackExecutor({ modelDir: standIn, threads: 1 });
    await executor.warmup();
    const personalized = await executor.personalize(
      {
        jobId: 'job_world_p',
        method: 'hyperdreambooth',
        images: [{ width: 32, height: 32, channels: 3, data: toRgbBytes(face) }],
        finetune: { steps: 2, rank: 2, relax: 'lora', seed: 0, identifier_token: 'sks' },
        outputs: [{ format: 'lidb', dtype: 'fp16' }],
      },
      context,
    );
    expect(personalized.baseModelId).toBe(WORLD_PACK_ID);
    lidbFile = personalized.files[0]!.bytes;
  }, 300_000);

  afterAll(async () => {
    await executor?.close();
  });

  it('personalizes from one 32 px render and draws a 64 px request at 32 px, enlarged 2×', async () => {
    const params = GenerationParams.parse({ prompt: 'a sketch of a sks face, on a red background', steps: 2, width: 64, height: 64, seed: 3 });
    const { images } = await executor.generate({ jobId: 'job_world_g', weights: { format: 'lidb', dtype: 'fp16', bytes: lidbFile }, baseModelId: WORLD_PACK_ID, params }, context);
    const image = images[0]!.image;
    expect([image.width, image.height]).toEqual([64, 64]);
    // Every 2 × 2 block repeats one drawn pixel.
    for (let y = 0; y < 64; y += 2) {
      for (let x = 0; x < 64; x += 2) {
        const at = (yy: number, xx: number) => Array.from(image.data.subarray((yy * 64 + xx) * 3, (yy * 64 + xx) * 3 + 3));
        expect(at(y, x + 1)).toEqual(at(y, x));
        expect(at(y + 1, x)).toEqual(at(y, x));
      }
    }
    const distinct = new Set(Array.from({ length: 64 * 64 }, (_, p) => image.data.subarray(p * 3, p * 3 + 3).join())).size;
    expect(distinct).toBeGreaterThan(1);
  }, 300_000);

  it('refuses a size that is not a whole multiple of 32 px as invalid input', async () => {
    const params = GenerationParams.parse({ prompt: 'a sks face', steps: 1, width: 72, height: 72, seed: 1 });
    const attempt = executor.generate({ jobId: 'job_world_bad', weights: { format: 'lidb', dtype: 'fp16', bytes: lidbFile }, baseModelId: WORLD_PACK_ID, params }, context);
    await expect(attempt).rejects.toBeInstanceOf(InvalidInputError);
    await expect(attempt).rejects.toThrow(/draws 32 px images/);
  });
});
