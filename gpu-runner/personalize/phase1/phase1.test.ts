import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_WORLD, identityIds, sampleAt, toRgbBytes } from '../../world/index.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import { preOptimizeIdentities, readPreOptimized, shardOf } from './pre-optimize.ts';
import { preparePhase1Subject, trainHypernetwork } from './train-hypernetwork.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-phase1-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const model = tinyPersonalizationModel({ hypernetworkSeed: 1 });
const identities = [0, 1, 2].map((index) => {
  const sample = sampleAt(DEFAULT_WORLD, 'train', index);
  return { id: `world-${index}`, image: { width: sample.image.width, height: sample.image.height, data: toRgbBytes(sample.image) } };
});

describe('phase 1', () => {
  it('splits identities into disjoint shards', () => {
    const items = [0, 1, 2, 3, 4];
    expect([0, 1].flatMap((index) => shardOf(items, { index, count: 2 })).sort()).toEqual(items);
    expect(() => shardOf(items, { index: 2, count: 2 })).toThrow(/invalid/);
    expect(identityIds(DEFAULT_WORLD, 'train').length).toBeGreaterThan(0);
  });

  it('pre-optimizes LiDB per identity, resumably, one file each', async () => {
    const outDir = join(root, 'lidb');
    const progress: number[] = [];
    const first = await preOptimizeIdentities(model, identities.slice(0, 2), { outDir, steps: 3, onProgress: (p) => progress.push(p.done) });
    expect(first.written).toEqual(['world-0', 'world-1']);
    expect(progress).toEqual([1, 2]);
    const again = await preOptimizeIdentities(model, identities.slice(0, 2), { outDir, steps: 3 });
    expect(again.skipped).toEqual(['world-0', 'world-1']);
    expect(readdirSync(outDir).sort()).toEqual(['world-0.lidb.safetensors', 'world-0.record.json', 'world-1.lidb.safetensors', 'world-1.record.json']);
    const weights = readPreOptimized(model, outDir, 'world-0');
    expect(weights.meta.method).toBe('lidb-zero');
    expect(weights.lidb).toHaveLength(model.layers.length);
    expect(() => readPreOptimized(model, outDir, '../x')).toThrow(/safe file name/);
  });

  it('trains the hypernetwork with α·diffusion + β·L2 (the L2 falls), and with β = 0; resumes exactly from a checkpoint', async () => {
    const outDir = join(root, 'lidb');
    const subjects = await Promise.all(
      identities.slice(0, 2).map(async (identity) => preparePhase1Subject(model, identity.image, { target: readPreOptimized(model, outDir, identity.id).lidb! })),
    );
    const validation = [await preparePhase1Subject(model, identities[2]!.image)];

    const l2: number[] = [];
    const withL2 = await trainHypernetwork(model, subjects, [], { steps: 6, batchSize: 2, beta: 1, learningRate: 3e-3, onProgress: (p) => l2.push(p.l2Loss!) });
    expect(withL2.losses.every(Number.isFinite)).toBe(true);
    expect(l2[l2.length - 1]!).toBeLessThan(l2[0]!);

    const checkpointPath = join(root, 'phase1.ckpt.safetensors');
    const straight = await trainHypernetwork(model, subjects, validation, { steps: 4, batchSize: 2, validationEvery: 2, learningRate: 1e-3 });
    expect(straight.validation.map((v) => v.step)).toEqual([2, 4]);
    expect(straight.validation.every((v) => Number.isFinite(v.loss))).toBe(true);
    await trainHypernetwork(model, subjects, [], { steps: 2, batchSize: 2, learningRate: 1e-3, checkpointPath });
    const resumed = await trainHypernetwork(model, subjects, [], { steps: 4, batchSize: 2, learningRate: 1e-3, checkpointPath, resume: true });
    expect(resumed.losses).toHaveLength(2);
    expect(resumed.losses).toEqual(straight.losses.slice(2));
    const name = 'heads.0.weight';
    expect(Array.from(resumed.params.get(name)!)).toEqual(Array.from(straight.params.get(name)!));
  });
});
