// Textual-inversion weights in the runner's generation sessions: the text encoder takes the learned rows and their
// token ids as inputs and must compute what the TI finetune trained through (the trainer's constant-selector graph).
import { afterAll, describe, expect, it } from 'vitest';
import { CLIP_TEXT_INPUT, CLIP_TEXT_OUTPUTS, buildClipTextGraph } from '../models/clip-text/build.ts';
import { openGraphSession } from '../models/session.ts';
import { BindingGraph } from './finetune/diffusion-loss-graph.ts';
import { weightsOf } from './finetune/fast-finetune.ts';
import { embeddingRows, identifierTokenIds, TI_EMBEDDING_INPUT, TOKEN_EMBEDDING_PARAM, withTrainableRows } from './finetune/textual-inversion.ts';
import { tinyPersonalizationModel } from './testing/tiny-model.ts';
import type { PersonalizedWeights } from './weights/personalized-weights.ts';
import { fillGaussianFloat32, namedRng } from '../random/index.ts';
import { PersonalizedSessions } from './personalized-diffusion.ts';

const model = tinyPersonalizationModel();
const sessions = new PersonalizedSessions(model, 1);
const { hiddenSize, vocabSize } = model.textEncoder.config;

afterAll(() => sessions.release());

function tiWeights(token: string, rows: (ids: number[]) => Float32Array): PersonalizedWeights {
  const tokenIds = identifierTokenIds(model, token);
  return weightsOf(model, 'textual-inversion', 3, { textualInversion: { token, tokenIds, embedding: rows(tokenIds) } });
}

const randomRows = (seed: number) => (ids: number[]) => fillGaussianFloat32(namedRng(seed, 'ti-rows'), ids.length * hiddenSize, 0.5);

function promptIds(prompt: string): BigInt64Array {
  return BigInt64Array.from(model.tokenizer.tokenize(prompt), (id) => BigInt(id));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The trainer's text encoder: the ids baked in as constant selectors (personalize/finetune/fast-finetune.ts). */
async function trainerEncode(ids: BigInt64Array, weights: PersonalizedWeights): Promise<Float32Array> {
  const ti = weights.textualInversion!;
  const g = new BindingGraph('text_encoder_trainer_form');
  g.redirectParam(TOKEN_EMBEDDING_PARAM, (table) => withTrainableRows(g, table, ti.tokenIds, vocabSize, hiddenSize));
  buildClipTextGraph(model.textEncoder.config, model.paramSources.textEncoder, { batch: 1, length: 77, graph: g });
  const session = await openGraphSession(g, { threads: 1 });
  try {
    const out = await session.run({
      [CLIP_TEXT_INPUT]: { dtype: 'int64', dims: [1, 77], data: ids },
      [TI_EMBEDDING_INPUT]: { dtype: 'float32', dims: [ti.tokenIds.length, hiddenSize], data: ti.embedding },
    });
    return out[CLIP_TEXT_OUTPUTS.lastHiddenState]!;
  } finally {
    await session.release();
  }
}

describe('PersonalizedSessions with textual-inversion weights', () => {
  const base = weightsOf(model, 'hyper-only', 0, {});

  it('with the table’s own rows, encodes as the base text encoder does (≤ 1e-6)', async () => {
    const unchanged = tiWeights('[V]', (ids) => embeddingRows(model, ids));
    const ids = promptIds('a photo of a [V] face');
    const expected = await sessions.modelsFor(base).encodeText(ids, 1);
    expect(maxAbsDiff(await sessions.modelsFor(unchanged).encodeText(ids, 1), expected)).toBeLessThanOrEqual(1e-6);
  });

  it('with learned rows, matches the trainer’s graph where the token appears and the base model where it does not', async () => {
    const learned = tiWeights('[V]', randomRows(1));
    const withToken = promptIds('a photo of a [V] face');
    const got = await sessions.modelsFor(learned).encodeText(withToken, 1);
    expect(maxAbsDiff(got, await trainerEncode(withToken, learned))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(got, await sessions.modelsFor(base).encodeText(withToken, 1))).toBeGreaterThan(1e-2);
    const without = promptIds('a photo of a cat');
    expect(maxAbsDiff(await sessions.modelsFor(learned).encodeText(without, 1), await sessions.modelsFor(base).encodeText(without, 1))).toBeLessThanOrEqual(1e-6);
  });

  it('serves another identifier with as many tokens from the same session, with its own ids', async () => {
    const a = tiWeights('[V]', randomRows(2));
    const b = tiWeights('[Q]', randomRows(2));
    expect(b.textualInversion!.tokenIds).toHaveLength(a.textualInversion!.tokenIds.length);
    expect(b.textualInversion!.tokenIds).not.toEqual(a.textualInversion!.tokenIds);
    const prompt = promptIds('a [Q] face');
    const got = await sessions.modelsFor(b).encodeText(prompt, 1);
    expect(maxAbsDiff(got, await trainerEncode(prompt, b))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(got, await sessions.modelsFor(a).encodeText(prompt, 1))).toBeGreaterThan(1e-2);
  });
});
