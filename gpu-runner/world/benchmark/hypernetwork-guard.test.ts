// A quality guard on the committed world pack: the hypernetwork's prediction alone (no finetune) must draw the TEST
// face it is shown clearly better than the base model does, so a change that breaks the hypernetwork, its training
// or its loading turns the suite red. Small and seeded; the full-size numbers are `npm run bench:world`'s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelPack } from '../../pack/model-pack.ts';
import { WorldEvaluator } from '../evaluators/evaluator.ts';
import { WORLD_PACK_DIR } from '../../pack/world-pack.ts';
import { runWorldBenchmark, subjectLabel, type WorldBenchmarkResult } from './harness.ts';
import { parseSettings, QUICK_SETTINGS } from './settings.ts';
import { summarize } from './summary.ts';

/** 4 TEST identities × 3 prompts (every style and accessory once), DDIM 10: about 10 s of sampling on 2 cores. */
const GUARD = parseSettings({ ...QUICK_SETTINGS, identities: 4, prompts: 3, imagesPerPrompt: 1, samplerSteps: 10, methods: ['hyper-only'], warmup: false });
/**
 * The margin the prediction must clear over the base model's identity similarity. bench:world measures the gap at
 * full size (docs/hypernetwork.md); this guard keeps well under it so sampling noise on 12 images cannot flip it.
 */
const IDENTITY_MARGIN = 0.15;

let evaluator: WorldEvaluator;
let result: WorldBenchmarkResult;

beforeAll(async () => {
  const pack = await loadModelPack(WORLD_PACK_DIR, () => {});
  expect(pack.hypernetwork).toBe('checkpoint');
  evaluator = await WorldEvaluator.open();
  result = await runWorldBenchmark({ pack, evaluator, settings: GUARD });
}, 300_000);

afterAll(async () => {
  await evaluator?.close();
});

describe('the committed hypernetwork carries identity', () => {
  it(`its prediction alone beats the base model's identity similarity by ≥ ${IDENTITY_MARGIN} on held-out faces, keeping prompt fidelity`, () => {
    const rows = new Map(summarize(result).map((row) => [row.label, row]));
    const base = rows.get('base-model')!;
    const hyper = rows.get('hyper-only')!;
    expect(result.outcomes.map((o) => subjectLabel(o.subject))).toEqual(['renders', 'base-model', 'hyper-only']);
    expect(hyper.identitySimilarity.n).toBe(12);
    expect(hyper.identitySimilarity.mean).toBeGreaterThan(base.identitySimilarity.mean + IDENTITY_MARGIN);
    // The identity must not come from copying the reference photo: the prompts' contexts still show.
    expect(hyper.promptFidelity.mean).toBeGreaterThan(base.promptFidelity.mean - 0.15);
  });
});
