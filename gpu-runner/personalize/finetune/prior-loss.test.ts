// Prior preservation's batch-of-two loss, checked against the batch-1 loss run on each sample alone: the weighted graph
// must be MSE(instance) + λ · MSE(class) with the LiDB factors, relax terms and textual-inversion rows shared by both
// samples (fed once, applied to each), and the graph without a prior must stay the batch-1 mean.
import { describe, expect, it } from 'vitest';
import type { HostTensor } from '../../onnx/index.ts';
import { createSession, runSession } from '../../onnx/testing/ort.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { lidbAdapterFeeds, type LidbAdapterValues } from '../lidb/graph-adapter.ts';
import type { LidbTrainable } from '../lidb/delta.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import { buildDiffusionLossGraph, type DiffusionLossGraphOptions, LOSS_INPUTS, LOSS_OUTPUT } from './diffusion-loss-graph.ts';
import { optimizeOnSubject, type OptimizationPlan } from './fast-finetune.ts';
import { identifierTokenIds } from './textual-inversion.ts';
import type { ClassSample } from './prior.ts';
import type { EncodedSubject } from './subject.ts';

const model = tinyPersonalizationModel();
const gaussian = (name: string, n: number, std = 1) => fillGaussianFloat32(namedRng(17, name), n, std);
const ids = (text: string) => BigInt64Array.from(model.tokenizer.tokenize(text), (id) => BigInt(id));

/** Nonzero factors for every input the adapters made (so a factor applied to one sample only would show). */
function adapterFeeds(values: { unet: LidbAdapterValues; textEncoder: LidbAdapterValues }, relaxRank: number): Record<string, HostTensor> {
  const merged: LidbAdapterValues = {
    lidb: new Map([...values.unet.lidb, ...values.textEncoder.lidb]),
    relaxLidb: new Map([...values.unet.relaxLidb, ...values.textEncoder.relaxLidb]),
    relaxLora: new Map([...values.unet.relaxLora, ...values.textEncoder.relaxLora]),
  };
  const r = model.lidb.r;
  return lidbAdapterFeeds(merged, {
    lidb: new Map(model.layers.map((l, i) => [l.name, { aTrain: gaussian(`${l.name}/a`, r * model.bases[i]!.aEff, 0.3), bTrain: gaussian(`${l.name}/b`, r * model.bases[i]!.bEff, 0.3) }])),
    relaxLidb: new Map(model.layers.map((l, i) => [l.name, { aTrain: gaussian(`${l.name}/ra`, relaxRank * model.bases[i]!.aEff, 0.3), bTrain: gaussian(`${l.name}/rb`, relaxRank * model.bases[i]!.bEff, 0.3) }])),
    relaxLora: new Map(model.layers.map((l) => [l.name, { down: gaussian(`${l.name}/down`, relaxRank * l.inFeatures, 0.1), up: gaussian(`${l.name}/up`, relaxRank * l.outFeatures, 0.1) }])),
  });
}

interface Sample {
  readonly prompt: string;
  readonly timestep: number;
  readonly noisy: Float32Array;
  readonly target: Float32Array;
}

function sampleFeeds(samples: readonly Sample[], latentShape: readonly number[]): Record<string, HostTensor> {
  const cat = (parts: readonly Float32Array[]) => {
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const tokens = samples.map((s) => ids(s.prompt));
  const allIds = new BigInt64Array(tokens.reduce((n, t) => n + t.length, 0));
  tokens.forEach((t, i) => allIds.set(t, i * t.length));
  return {
    [LOSS_INPUTS.inputIds]: { dtype: 'int64', dims: [samples.length, tokens[0]!.length], data: allIds },
    [LOSS_INPUTS.noisyLatents]: { dtype: 'float32', dims: latentShape, data: cat(samples.map((s) => s.noisy)) },
    [LOSS_INPUTS.timestep]: { dtype: 'float32', dims: [samples.length], data: Float32Array.from(samples, (s) => s.timestep) },
    [LOSS_INPUTS.target]: { dtype: 'float32', dims: latentShape, data: cat(samples.map((s) => s.target)) },
  };
}

const single = buildDiffusionLossGraph(model, { lidb: 'none' });
const perSample = single.latentShape.reduce((a, b) => a * b, 1);
const instance: Sample = { prompt: 'a [V] face', timestep: 321, noisy: gaussian('x0', perSample), target: gaussian('eps0', perSample) };
const classSample: Sample = { prompt: 'a sketch of a face, on a red background, wearing a hat', timestep: 77, noisy: gaussian('x1', perSample), target: gaussian('eps1', perSample) };

/** Both graphs' losses: the batch-1 graph on each sample alone, the weighted batch-2 graph for each λ. */
async function losses(options: Pick<DiffusionLossGraphOptions, 'lidb' | 'relax'>, weights: readonly number[]) {
  const alone = buildDiffusionLossGraph(model, options);
  const pair = buildDiffusionLossGraph(model, { ...options, batch: 2, sampleWeights: true });
  const relaxRank = options.relax?.rank ?? 0;
  const [s1, s2] = await Promise.all([createSession(alone.graph), createSession(pair.graph)]);
  try {
    const run1 = async (s: Sample) => Number((await runSession(s1, { ...adapterFeeds(alone.adapters, relaxRank), ...sampleFeeds([s], alone.latentShape) }))[LOSS_OUTPUT]!.data[0]);
    const paired: number[] = [];
    for (const w of weights) {
      const feeds = {
        ...adapterFeeds(pair.adapters, relaxRank),
        ...sampleFeeds([instance, classSample], pair.latentShape),
        [LOSS_INPUTS.sampleWeights]: { dtype: 'float32' as const, dims: [2], data: Float32Array.of(1, w) },
      };
      paired.push(Number((await runSession(s2, feeds))[LOSS_OUTPUT]!.data[0]));
    }
    return { instance: await run1(instance), prior: await run1(classSample), paired };
  } finally {
    await Promise.all([s1.release(), s2.release()]);
  }
}

describe('the weighted batch-of-two loss', () => {
  const weights = [0, 0.5, 1, 2.5];
  it.each([
    ['LiDB factors as inputs', { lidb: 'input' }],
    ['fixed LiDB + an lidb relax term (HyperDreamBooth, relax lidb)', { lidb: 'input', relax: { mode: 'lidb', rank: 2 } }],
    ['fixed LiDB + a LoRA relax term (HyperDreamBooth, relax lora)', { lidb: 'input', relax: { mode: 'lora', rank: 2 } }],
    ['a LoRA alone (DreamBooth-LoRA)', { lidb: 'none', relax: { mode: 'lora', rank: 2 } }],
  ] as const)('is MSE(instance) + λ · MSE(class) from each sample run alone: %s', async (_, options) => {
    const got = await losses(options, weights);
    expect(got.instance).toBeGreaterThan(0);
    expect(Math.abs(got.prior - got.instance)).toBeGreaterThan(1e-3); // two different samples, so λ is visible
    weights.forEach((w, i) => {
      const expected = got.instance + w * got.prior;
      // float32 sums in another order (per-sample means, then the weighted sum): relative 1e-5 is ~100 ulps.
      expect(Math.abs(got.paired[i]! - expected)).toBeLessThan(1e-5 * Math.max(1, expected));
    });
  });

  it('leaves the graph without a prior as it was: batch 1, the mean, no weights input', () => {
    const plain = buildDiffusionLossGraph(model, { lidb: 'input' });
    expect(plain.latentShape[0]).toBe(1);
    expect(plain.graph.inputs).not.toContain(LOSS_INPUTS.sampleWeights);
    const pair = buildDiffusionLossGraph(model, { lidb: 'input', batch: 2, sampleWeights: true });
    expect(pair.graph.inputs).toContain(LOSS_INPUTS.sampleWeights);
    // The LiDB factors stay one [r, a′] / [b′, r] pair per layer, shared by the batch (not per-sample [B, …]).
    const [first] = pair.adapters.unet.lidb.values();
    expect(first!.aTrain.rank).toBe(2);
  });
});

describe('prior preservation in every optimization plan', () => {
  const side = model.resolution / 2 ** (model.vae.plan.config.blockOutChannels.length - 1);
  const shape = [1, model.vae.plan.config.latentChannels, side, side] as const;
  const n = shape[1] * side * side;
  const latent = (name: string, std: number): EncodedSubject => ({
    mean: gaussian(`${name}/mean`, n),
    std: new Float32Array(n).fill(std),
    shape,
    scalingFactor: model.vae.plan.config.scalingFactor,
  });
  const subject = latent('instance', 0.1);
  const samples: ClassSample[] = [
    { prompt: 'a photo of a face, on a blue background, wearing a hat', latent: latent('class-0', 0) },
    { prompt: 'pixel art of a face, on a green background', latent: latent('class-1', 0) },
  ];
  const fixedLidb = model.layers.map((l, i): LidbTrainable => ({ aTrain: gaussian(`${l.name}/fa`, model.lidb.r * model.bases[i]!.aEff, 0.3), bTrain: gaussian(`${l.name}/fb`, model.lidb.r * model.bases[i]!.bEff, 0.3) }));

  /** The mean loss over two evaluation draws before any step (class samples in turn), for λ (none: no prior). */
  const evaluation = async (plan: OptimizationPlan, weight?: number) =>
    (await optimizeOnSubject(model, subject, plan, { steps: 0, evaluationSamples: 2, seed: 4, ...(weight === undefined ? {} : { prior: { weight, samples } }) })).report.evaluationBefore!;

  it.each([
    ['HyperDreamBooth (relax over a fixed prediction)', { kind: 'relax', mode: 'lidb', rank: 2, fixedLidb }],
    ['Textual Inversion (trainable embedding rows)', { kind: 'textual-inversion', tokenIds: identifierTokenIds(model, '[V]') }],
  ] as [string, OptimizationPlan][])('adds λ · the class loss, linearly, with λ = 0 the batch-1 loss bit for bit: %s', async (_, plan) => {
    const alone = await evaluation(plan);
    expect(await evaluation(plan, 0)).toBe(alone);
    const one = await evaluation(plan, 1);
    const three = await evaluation(plan, 3);
    const classLoss = one - alone;
    expect(classLoss).toBeGreaterThan(1e-3);
    expect(Math.abs(three - (alone + 3 * classLoss))).toBeLessThan(1e-5 * Math.max(1, three));
  });
});
