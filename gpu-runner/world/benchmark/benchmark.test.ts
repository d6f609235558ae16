// The world benchmark's core on the tiny pack (random weights: only the form of the results is checked, not their
// values): 1 identity × 1 prompt, the cheapest methods with minimal steps, the real evaluator, sampler and library.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelPack, type LoadedPack } from '../../pack/model-pack.ts';
import { DEFAULT_WORLD, identityIds } from '../dataset.ts';
import { WorldEvaluator } from '../evaluators/evaluator.ts';
import { sampleGrid } from './grid.ts';
import { rotatedMethodOrder, runWorldBenchmark, subjectLabel, type Subject, type WorldBenchmarkResult } from './harness.ts';
import { benchmarkPrompts, PROMPT_CONTEXTS } from './prompts.ts';
import { parseSettings, QUICK_SETTINGS, type WorldBenchmarkSettings } from './settings.ts';
import { median, spread } from './stats.ts';
import { headAccuracyRows, pairedComparison, speedUp, summarize, tableRows } from './summary.ts';
import { HEADS } from '../evaluators/heads.ts';

const MINIMAL: WorldBenchmarkSettings = parseSettings({
  ...QUICK_SETTINGS,
  identities: 1,
  prompts: 1,
  imagesPerPrompt: 1,
  samplerSteps: 2,
  methods: ['hyperdreambooth', 'hyper-only', 'textual-inversion'],
  steps: { hyperdreambooth: 2, 'lidb-zero': 2, 'dreambooth-lora': 2, 'textual-inversion': 2 },
  warmup: false,
});

let pack: LoadedPack;
let evaluator: WorldEvaluator;
let result: WorldBenchmarkResult;

beforeAll(async () => {
  pack = await loadModelPack(undefined, () => {});
  evaluator = await WorldEvaluator.open();
  result = await runWorldBenchmark({ pack, evaluator, settings: MINIMAL });
});

afterAll(async () => {
  await evaluator?.close();
});

describe('world benchmark core (tiny pack)', () => {
  it('scores every row on the test identity and the same prompt', () => {
    expect(result.identityIds).toEqual(identityIds(DEFAULT_WORLD, 'test').slice(0, 1));
    expect(result.prompts.map((p) => p.text)).toEqual(['a photo of a sks face, on a blue background, wearing a hat']);
    expect(result.outcomes.map((o) => subjectLabel(o.subject))).toEqual(['renders', 'base-model', 'hyperdreambooth', 'hyper-only', 'textual-inversion']);
    for (const outcome of result.outcomes) {
      expect(outcome.scores).toHaveLength(1);
      expect(outcome.samples).toHaveLength(1);
      expect(outcome.samples[0]!.map((image) => [image.width, image.height])).toEqual([[pack.model.resolution, pack.model.resolution]]);
      for (const score of outcome.scores) {
        expect(score.identitySimilarity).toBeGreaterThanOrEqual(0);
        expect(score.identitySimilarity).toBeLessThanOrEqual(1 + 1e-6);
        expect(score.promptFidelity).toBeGreaterThanOrEqual(0);
        expect(score.promptFidelity).toBeLessThanOrEqual(1 + 1e-6);
        expect(score.referenceSimilarity).toBeGreaterThanOrEqual(-1 - 1e-6);
        expect(score.referenceSimilarity).toBeLessThanOrEqual(1 + 1e-6);
        expect(Object.keys(score.hits)).toEqual(HEADS.map((h) => h.name));
      }
    }
  });

  it('summarizes well-formed rows: finite metrics, times, steps and file sizes per method', () => {
    const rows = summarize(result);
    for (const row of rows) {
      for (const metric of [row.identitySimilarity, row.promptFidelity, row.referenceSimilarity]) {
        expect(Number.isFinite(metric.mean)).toBe(true);
        expect(metric.sd).toBe(0);
        expect(metric.n).toBe(1);
      }
      expect(Object.values(row.headAccuracy).every((a) => a === 0 || a === 1)).toBe(true);
    }
    const byLabel = new Map(rows.map((r) => [r.label, r]));
    for (const label of ['renders', 'base-model']) {
      expect(byLabel.get(label)).toMatchObject({ medianTotalMs: null, steps: null, fileBytes: null });
    }
    expect(byLabel.get('hyperdreambooth')).toMatchObject({ steps: 2 });
    expect(byLabel.get('hyper-only')).toMatchObject({ steps: 0, medianStepMs: null });
    expect(byLabel.get('textual-inversion')).toMatchObject({ steps: 2 });
    for (const label of ['hyperdreambooth', 'hyper-only', 'textual-inversion']) {
      const row = byLabel.get(label)!;
      expect(row.medianTotalMs).toBeGreaterThan(0);
      expect(Number.isFinite(row.medianTotalMs)).toBe(true);
      expect(row.fileBytes).toBeGreaterThan(0);
    }
    // HyperDreamBooth stores the prediction and the relax term, hyper-only the prediction, TI one embedding row.
    expect(byLabel.get('hyperdreambooth')!.fileBytes).toBeGreaterThan(byLabel.get('hyper-only')!.fileBytes!);
    expect(byLabel.get('hyper-only')!.fileBytes).toBeGreaterThan(byLabel.get('textual-inversion')!.fileBytes!);
    // DreamBooth-LoRA did not run: no speed-up to claim.
    expect(speedUp(rows)).toBeNull();
    expect(tableRows(rows).map((r) => r.method)).toEqual(rows.map((r) => r.label));
    expect(Object.keys(headAccuracyRows(rows)[0]!)).toHaveLength(1 + HEADS.length);
  });

  it('the evaluator reads what the prompt asked for on the world renders (prompts are paired with their contexts)', () => {
    const renders = summarize(result).find((r) => r.label === 'renders')!;
    expect(renders.promptFidelity.mean).toBeGreaterThan(0.5);
  });

  it('lays out a sample grid: one block per row, reference then prompts', () => {
    const grid = sampleGrid(result);
    const size = pack.model.resolution;
    expect(grid.columns).toHaveLength(2);
    // 5 blocks of 1 identity, with a blank separator row between blocks.
    expect(grid.rows).toHaveLength(9);
    expect([grid.image.width, grid.image.height]).toEqual([2 * size, 9 * size]);
  });

  it('is reproducible: the same settings give the same scores', async () => {
    const again = await runWorldBenchmark({ pack, evaluator, settings: { ...MINIMAL, methods: ['hyper-only'], referenceRows: false } });
    const first = result.outcomes.find((o) => subjectLabel(o.subject) === 'hyper-only')!;
    expect(again.outcomes[0]!.scores).toEqual(first.scores);
  });
});

describe('world benchmark settings and helpers', () => {
  it('refuses bad settings with a clear error', () => {
    expect(() => parseSettings({ ...QUICK_SETTINGS, identities: 0 })).toThrow(/invalid world benchmark settings[\s\S]*identities/);
    expect(() => parseSettings({ ...QUICK_SETTINGS, methods: ['dreambooth'] })).toThrow(/methods/);
    expect(() => benchmarkPrompts(PROMPT_CONTEXTS.length + 1, 'sks')).toThrow(/prompts must be/);
    expect(() => parseSettings({ ...QUICK_SETTINGS, priorWeight: -1 })).toThrow(/invalid world benchmark settings[\s\S]*priorWeight/);
    expect(() => parseSettings({ ...QUICK_SETTINGS, priorImages: 0 })).toThrow(/priorImages/);
    expect(() => parseSettings({ ...QUICK_SETTINGS, priorImages: 65 })).toThrow(/priorImages/);
    expect(() => parseSettings({ ...QUICK_SETTINGS, finetuneTimesteps: { kind: 'stratified', maxFraction: 0 } })).toThrow(/finetuneTimesteps/);
  });

  it('runs the optimizing methods with prior preservation: priorImages class samples drawn once, λ applied', async () => {
    const lines: string[] = [];
    const settings = { ...MINIMAL, methods: ['hyperdreambooth', 'hyper-only'], referenceRows: false, priorWeight: 1, priorImages: 2 } satisfies WorldBenchmarkSettings;
    const withPrior = await runWorldBenchmark({ pack, evaluator, settings, log: (line) => lines.push(line) });
    expect(lines).toContain('prior preservation: λ 1, 2 class samples');
    const [hyper] = withPrior.outcomes;
    expect(hyper!.runs[0]!.steps).toBe(MINIMAL.steps.hyperdreambooth);
    // Same seeds and draws for the instance: only the added class loss (and what it changes) differs from the run without.
    expect(hyper!.runs[0]!.finalLoss).not.toBe(result.outcomes.find((o) => subjectLabel(o.subject) === subjectLabel(hyper!.subject))!.runs[0]!.finalLoss);
  });

  it('runs every row on one face before the next face, the methods rotated face by face', async () => {
    const lines: string[] = [];
    const settings = { ...MINIMAL, identities: 2, methods: ['hyper-only', 'textual-inversion'], referenceRows: false, steps: { ...MINIMAL.steps, 'textual-inversion': 1 } } satisfies WorldBenchmarkSettings;
    const run = await runWorldBenchmark({ pack, evaluator, settings, log: (line) => lines.push(line) });
    expect(run.runOrder).toEqual([
      ['hyper-only', 'textual-inversion'],
      ['textual-inversion', 'hyper-only'],
    ]);
    const [first, second] = run.identityIds;
    const personalized = lines.filter((line) => / identity \d+: /.test(line) && !line.startsWith('identity')).map((line) => line.split(':')[0]);
    expect(personalized).toEqual([`hyper-only identity ${first}`, `textual-inversion identity ${first}`, `textual-inversion identity ${second}`, `hyper-only identity ${second}`]);
    // Paired per-face differences: a row against itself differs by nothing; the two rows' differences are antisymmetric.
    const self = pairedComparison(run, 'hyper-only', 'hyper-only')!;
    expect(self.identity).toEqual({ mean: 0, sd: 0, n: 2 });
    expect(self.identityWins).toBe(2);
    const ab = pairedComparison(run, 'hyper-only', 'textual-inversion')!;
    const ba = pairedComparison(run, 'textual-inversion', 'hyper-only')!;
    expect(ab.identity.mean).toBeCloseTo(-ba.identity.mean, 12);
    expect(ab.fidelity.mean).toBeCloseTo(-ba.fidelity.mean, 12);
    expect(Object.keys(ab.byIdentity)).toEqual(run.identityIds.map(String));
    expect(pairedComparison(run, 'hyper-only', 'dreambooth-lora')).toBeNull();
  });

  it('orders rows: reference rows first, methods rotated by one place per face', () => {
    const subjects: Subject[] = [{ kind: 'renders' }, { kind: 'base-model' }, { kind: 'method', method: 'hyperdreambooth' }, { kind: 'method', method: 'dreambooth-lora' }, { kind: 'method', method: 'lidb-zero' }];
    expect(rotatedMethodOrder(subjects, 0)).toEqual([0, 1, 2, 3, 4]);
    expect(rotatedMethodOrder(subjects, 1)).toEqual([0, 1, 3, 4, 2]);
    expect(rotatedMethodOrder(subjects, 2)).toEqual([0, 1, 4, 2, 3]);
    expect(rotatedMethodOrder(subjects, 3)).toEqual([0, 1, 2, 3, 4]);
    expect(rotatedMethodOrder([{ kind: 'renders' }], 5)).toEqual([0]);
  });

  it('refuses more identities than the test split holds', async () => {
    await expect(runWorldBenchmark({ pack, evaluator, settings: { ...MINIMAL, identities: 51 } })).rejects.toThrow(/test split has 50 identities/);
  });

  it('quick-mode prompts cover every style and accessory', () => {
    const contexts = benchmarkPrompts(QUICK_SETTINGS.prompts, 'sks').map((p) => p.context);
    expect(new Set(contexts.map((c) => c.style)).size).toBe(3);
    expect(new Set(contexts.map((c) => c.accessory)).size).toBe(3);
  });

  it('spread and median', () => {
    expect(spread([1, 2, 3, 4])).toEqual({ mean: 2.5, sd: Math.sqrt(5 / 3), n: 4 });
    expect(() => spread([])).toThrow(/no values/);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1])).toBe(2.5);
  });
});
