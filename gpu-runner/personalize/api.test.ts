import { describe, expect, it } from 'vitest';
import { DEFAULT_WORLD, sampleAt, toRgbBytes } from '../world/index.ts';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { float32Tensor } from '../onnx/runtime/index.ts';
import { fastFinetune, openHypernetworkSession, personalize, predict } from './api.ts';
import { PersonalizationCanceled, photoOfStep } from './finetune/fast-finetune.ts';
import { embeddingRows } from './finetune/textual-inversion.ts';
import { lidbDelta } from './lidb/delta.ts';
import { maxAbsDiff } from '../parity/check.ts';
import { tinyPersonalizationModel } from './testing/tiny-model.ts';
import { decodeNativeWeights, encodeNativeWeights } from './weights/native-format.ts';
import type { PersonalizedWeights } from './weights/personalized-weights.ts';

const model = tinyPersonalizationModel({ hypernetworkSeed: 7 });
const sample = sampleAt(DEFAULT_WORLD, 'train', 0);
const image = { width: sample.image.width, height: sample.image.height, data: toRgbBytes(sample.image) };

describe('personalization API on the tiny SD 1.5', () => {
  it('predict gives LiDB weights for all 92 tiny layers, ΔW ≈ 0 at init, deterministic', async () => {
    expect(model.resolution).toBe(64);
    const weights = await predict(model, { image });
    expect(weights.layers).toHaveLength(92);
    expect(weights.meta.method).toBe('hyper-only');
    const again = await predict(model, { image });
    expect(again.lidb).toEqual(weights.lidb);
    const worst = Math.max(...weights.lidb!.flatMap((f, i) => Array.from(lidbDelta(model.bases[i]!, f, 1), Math.abs)));
    expect(worst).toBeLessThan(1e-3);
  });

  it('a hypernetwork too large to inline runs from external data with the same predictions', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hdb-hyper-'));
    const dir = join(root, 'saved');
    try {
      const inline = await openHypernetworkSession(model);
      const external = await openHypernetworkSession(model, 0, dir);
      const reused = await openHypernetworkSession(model, 0, dir);
      await reused.close();
      expect(readdirSync(dir).sort()).toEqual(['hypernetwork.onnx', 'hypernetwork.weights']);
      const size = model.hypernetwork!.config.encoder.imageSize;
      const feeds = { pixels: float32Tensor(new Float32Array(3 * size * size).fill(0.25), [1, 3, size, size]) };
      const [a, b] = [await inline.run(feeds), await external.run(feeds)];
      expect(b['A_train.0']!.data).toEqual(a['A_train.0']!.data);
      await Promise.all([inline.close(), external.close()]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a saved hypernetwork graph is found by its parameters: a retrained one of the same pack is not served the old copy', async () => {
    const hyper = model.hypernetwork!;
    const retrained = { ...model, hypernetwork: { ...hyper, params: new Map([...hyper.params].map(([name, v]) => [name, name.startsWith('heads.') ? v.map((x) => x * 2 + 0.01) : v])) } };
    expect(retrained.sha256).toBe(model.sha256);
    const size = hyper.config.encoder.imageSize;
    const feeds = { pixels: float32Tensor(new Float32Array(3 * size * size).fill(0.25), [1, 3, size, size]) };
    // Inline limit 0: both save their graph under the default cache folder, as a full-size hypernetwork does.
    const [saved, savedRetrained, inlineRetrained] = [await openHypernetworkSession(model, 0), await openHypernetworkSession(retrained, 0), await openHypernetworkSession(retrained)];
    const [a, b, c] = [await saved.run(feeds), await savedRetrained.run(feeds), await inlineRetrained.run(feeds)];
    expect(b['A_train.0']!.data).toEqual(c['A_train.0']!.data);
    expect(maxAbsDiff(a['A_train.0']!.data as Float32Array, b['A_train.0']!.data as Float32Array)).toBeGreaterThan(1e-3);
    await Promise.all([saved.close(), savedRetrained.close(), inlineRetrained.close()]);
  });

  it('fastFinetune lowers the diffusion loss on the subject, reports progress, and is deterministic', async () => {
    const init = await predict(model, { image });
    const progress: number[] = [];
    const options = { steps: 12, rank: 2, relax: 'lidb' as const, learningRate: 1e-2, seed: 3, evaluationSamples: 6 };
    const { weights, report } = await fastFinetune(model, { image }, init, { ...options, onProgress: (p) => progress.push(p.step) });
    expect(progress).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(report.evaluationAfter!).toBeLessThan(report.evaluationBefore!);
    expect(weights.relax?.mode).toBe('lidb');
    const again = await fastFinetune(model, { image }, init, options);
    expect(again.weights.relax).toEqual(weights.relax);
    const back = decodeNativeWeights(encodeNativeWeights(weights, 'F32'), { unet: model.unet.plan, textEncoder: model.textEncoder.config });
    expect(back.relax).toEqual(weights.relax);
  });

  it('textual-inversion trains only the identifier token embeddings, and the weight file keeps them', async () => {
    const { weights, report } = await personalize(model, { image }, { method: 'textual-inversion', steps: 6, learningRate: 1e-2, seed: 2, evaluationSamples: 4 });
    const ti = weights.textualInversion!;
    expect(ti.token).toBe('[V]');
    expect(ti.tokenIds).toEqual(model.tokenizer.encode('[V]'));
    const initial = embeddingRows(model, ti.tokenIds);
    expect(ti.embedding).toHaveLength(initial.length);
    expect(ti.embedding.some((v, i) => Math.abs(v - initial[i]!) > 1e-3)).toBe(true);
    expect(weights.lidb).toBeUndefined();
    expect(Number.isFinite(report!.evaluationAfter!)).toBe(true);
    const back = decodeNativeWeights(encodeNativeWeights(weights, 'F32'), { unet: model.unet.plan, textEncoder: model.textEncoder.config });
    expect(back.textualInversion).toEqual(ti);
  });

  it('stops between steps when canceled', async () => {
    const controller = new AbortController();
    const run = personalize(model, { image }, {
      method: 'dreambooth-lora',
      steps: 5,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 2) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(PersonalizationCanceled);
  });
});

describe('a subject with several photos', () => {
  const other = sampleAt(DEFAULT_WORLD, 'train', 1);
  const second = { image: { width: other.image.width, height: other.image.height, data: toRgbBytes(other.image) } };
  const worstOver = (a: PersonalizedWeights, b: PersonalizedWeights) =>
    Math.max(...a.lidb!.flatMap((f, i) => [maxAbsDiff(f.aTrain, b.lidb![i]!.aTrain), maxAbsDiff(f.bTrain, b.lidb![i]!.bTrain)]));

  it('mean-weights averages the per-photo predictions; first takes the first photo; a list of one is one photo', async () => {
    const [a, b] = [await predict(model, { image }), await predict(model, second)];
    expect(worstOver(a, b)).toBeGreaterThan(1e-4);
    const mean = await predict(model, [{ image }, second], 'mean-weights');
    mean.lidb!.forEach((f, i) => {
      const expected = a.lidb![i]!.aTrain.map((v, k) => (v + b.lidb![i]!.aTrain[k]!) / 2);
      expect(maxAbsDiff(f.aTrain, expected)).toBeLessThan(1e-6);
    });
    expect(worstOver(await predict(model, [{ image }, second], 'first'), a)).toBe(0);
    expect(worstOver(await predict(model, [{ image }]), a)).toBe(0);
    await expect(predict(model, [])).rejects.toThrow(/at least one photo/);
  });

  it('mean-features pools the encoder tokens: the same photo twice predicts what it predicts alone, two photos neither one', async () => {
    const a = await predict(model, { image });
    expect(worstOver(await predict(model, [{ image }, { image }], 'mean-features'), a)).toBeLessThan(1e-5);
    const pooled = await predict(model, [{ image }, second], 'mean-features');
    expect(worstOver(pooled, a)).toBeGreaterThan(1e-5);
    expect(worstOver(pooled, await predict(model, second))).toBeGreaterThan(1e-5);
  });

  it('the finetune takes the photos in turn: deterministic, and not the one-photo result', async () => {
    expect([0, 1, 2, 3, 4].map((step) => photoOfStep(['a', 'b'], step))).toEqual(['a', 'b', 'a', 'b', 'a']);
    const options = { method: 'hyperdreambooth' as const, steps: 4, rank: 2, relax: 'lidb' as const, learningRate: 1e-2, seed: 5, evaluationSamples: 2 };
    const two = await personalize(model, [{ image }, second], options);
    const again = await personalize(model, [{ image }, second], options);
    expect(again.weights.relax).toEqual(two.weights.relax);
    const one = await personalize(model, { image }, options);
    expect(one.weights.relax).not.toEqual(two.weights.relax);
  });
});
