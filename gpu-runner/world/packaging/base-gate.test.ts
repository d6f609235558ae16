// The base-model gate: its verdict rule on constructed scores, then one small run on a stand-in world pack (random
// UNet and text encoder, the committed VAE) through the benchmark's sampler and the real evaluator.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelPack } from '../../pack/model-pack.ts';
import { type Context } from '../attributes.ts';
import { sampleGrid } from '../benchmark/grid.ts';
import { PROMPT_CONTEXTS } from '../benchmark/prompts.ts';
import { DEFAULT_WORLD, identityIds } from '../dataset.ts';
import { WorldEvaluator } from '../evaluators/evaluator.ts';
import { HEADS } from '../evaluators/heads.ts';
import { sampleIdentity } from '../sample.ts';
import { gatePassed, GATED_HEADS, headFigures, PASS_LIFT, runBaseGate, type GateItem } from './base-gate.ts';
import { writeStandInPack } from './stand-in.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-base-gate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ids = identityIds(DEFAULT_WORLD, 'test').slice(0, 8);
const identities = ids.map((id) => sampleIdentity(DEFAULT_WORLD.seed, id));

/** Items over 8 test identities × 9 contexts whose hits come from `hit(head, identity index, context index)`. */
function items(hit: (head: string, i: number, c: number) => boolean): GateItem[] {
  return identities.flatMap((identity, i) =>
    PROMPT_CONTEXTS.map((context: Context, c) => ({ identity, context, hits: Object.fromEntries(HEADS.map((h) => [h.name, hit(h.name, i, c)])) })),
  );
}

describe('the gate rule', () => {
  it('passes a model that reads every caption and fails one that reads none', () => {
    expect(gatePassed(headFigures(items(() => true)))).toBe(true);
    expect(gatePassed(headFigures(items(() => false)))).toBe(false);
  });

  it('fails when one gated head sits at chance, and ignores reported heads', () => {
    const noBackground = headFigures(items((head) => head !== 'background'));
    expect(noBackground.find((h) => h.name === 'background')!.passed).toBe(false);
    expect(gatePassed(noBackground)).toBe(false);
    const noEyes = headFigures(items((head) => head !== 'eye_colour'));
    expect(noEyes.find((h) => h.name === 'eye_colour')!.gated).toBe(false);
    expect(gatePassed(noEyes)).toBe(true);
  });

  it('puts chance at the larger of uniform guessing and the most common truth, and the bar PASS_LIFT of the way to perfect', () => {
    const figures = headFigures(items(() => true));
    const style = figures.find((h) => h.name === 'style')!;
    expect(style.chance).toBeCloseTo(1 / 3, 12);
    expect(style.threshold).toBeCloseTo(1 / 3 + PASS_LIFT * (2 / 3), 12);
    const background = figures.find((h) => h.name === 'background')!;
    // 9 contexts over 8 backgrounds: blue appears twice.
    expect(background.chance).toBeCloseTo(2 / 9, 12);
    expect(figures.filter((h) => h.gated).map((h) => h.name).sort()).toEqual([...GATED_HEADS].sort());
    // Style right in exactly 6 of 9 contexts: accuracy 2/3, lift (2/3 − 1/3) / (2/3) = 0.5 ≥ 0.4 → passes.
    const six = headFigures(items((head, _i, c) => head !== 'style' || c < 6)).find((h) => h.name === 'style')!;
    expect(six.accuracy).toBeCloseTo(2 / 3, 12);
    expect(six.lift).toBeCloseTo(0.5, 12);
    expect(six.passed).toBe(true);
    // … in 5 of 9: lift (5/9 − 1/3) / (2/3) = 1/3 < 0.4 → fails.
    expect(headFigures(items((head, _i, c) => head !== 'style' || c < 5)).find((h) => h.name === 'style')!.passed).toBe(false);
  });

  it('measures lift up to what the evaluator reads on the world’s renders, and fails a head it cannot read', () => {
    // Renders read style right in 6 of 9 contexts (ceiling 2/3): the model's 5 of 9 is then (5/9 − 1/3) / (2/3 − 1/3) = 2/3.
    const renders = items((head, _i, c) => head !== 'style' || c < 6);
    const style = headFigures(items((head, _i, c) => head !== 'style' || c < 5), renders).find((h) => h.name === 'style')!;
    expect(style.ceiling).toBeCloseTo(2 / 3, 12);
    expect(style.lift).toBeCloseTo(2 / 3, 12);
    expect(style.threshold).toBeCloseTo(1 / 3 + PASS_LIFT / 3, 12);
    expect(style.passed).toBe(true);
    const unreadable = headFigures(items(() => true), items((head) => head !== 'skin')).find((h) => h.name === 'skin')!;
    expect(unreadable.lift).toBe(0);
    expect(unreadable.passed).toBe(false);
  });
});

describe('a gate run on a stand-in world pack', () => {
  it('samples every (identity, context) prompt, scores model and renders, and fills the sample sheet', async () => {
    const dir = writeStandInPack(join(root, 'pack'));
    const pack = await loadModelPack(dir, () => {});
    const evaluator = await WorldEvaluator.open();
    try {
      const result = await runBaseGate({ pack, evaluator, settings: { identities: 2, contexts: 3, imagesPerPrompt: 1, samplerSteps: 2, guidanceScale: 4, seed: 1, threads: 1 } });
      expect(result.identityIds).toEqual(ids.slice(0, 2));
      expect(result.images).toBe(6);
      expect(result.prompts[0]!.text).toMatch(/^a photo of a face with \w+ skin, .+ eyes, .+ on a blue background, wearing a hat$/);
      expect(result.prompts[1]!.text).toMatch(/^a sketch of a face with .+ on a red background$/);
      expect(new Set(result.prompts.map((p) => p.seed)).size).toBe(6);
      expect(result.heads.map((h) => h.name)).toEqual(HEADS.map((h) => h.name));
      for (const head of result.heads) {
        expect(head.accuracy).toBeGreaterThanOrEqual(0);
        expect(head.accuracy).toBeLessThanOrEqual(1);
        expect(head.rendersAccuracy).toBeDefined();
      }
      // The world's renders are read by the evaluator far better than random weights' noise.
      const mean = (key: 'accuracy' | 'rendersAccuracy') => result.heads.reduce((s, h) => s + h[key]!, 0) / result.heads.length;
      expect(mean('rendersAccuracy')).toBeGreaterThan(mean('accuracy'));
      const grid = sampleGrid(result.sheet);
      expect(grid.columns).toEqual(['reference', 'photo, blue, hat', 'sketch, red, bare', 'pixel art, green, glasses']);
      expect(grid.rows).toEqual(['renders / identity 450', 'renders / identity 451', '', 'base-model / identity 450', 'base-model / identity 451']);
      expect([grid.image.width, grid.image.height]).toEqual([4 * 32, 5 * 32]);
    } finally {
      await evaluator.close();
    }
  }, 300_000);
});
