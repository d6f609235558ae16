import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, toFloat32 } from '../../io/safetensors.ts';
import { LoraAdapter, loraFeeds, type LoraWeights } from '../../models/adapters/lora.ts';
import { openTextEncoderFolder, openUnetFolder } from '../../models/checkpoint/diffusers-folder.ts';
import { buildClipTextGraph } from '../../models/clip-text/build.ts';
import { parseClipTextConfig } from '../../models/clip-text/config.ts';
import { type LinearAdapter, ModelBuilder } from '../../models/layers.ts';
import { inlineParams, mapParams } from '../../models/params.ts';
import { buildUnetGraph, UNET_OUTPUT } from '../../models/unet/build.ts';
import { add, Graph, grad, mul, reduceSum, type HostTensor } from '../../onnx/index.ts';
import { gradCheck } from '../../onnx/testing/gradcheck.ts';
import { createSession, runSession } from '../../onnx/testing/ort.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { exportLora } from '../weights/lora-export.ts';
import { importLora } from '../weights/lora-import.ts';
import { adaptedLayers, adaptedLayerSelectionSchema } from './adapted-layers.ts';
import { auxBases } from './aux-bases.ts';
import { lidbDelta } from './delta.ts';
import { createLidbAdapter, lidbAdapterFeeds } from './graph-adapter.ts';
import { lidbSettings } from './settings.ts';

const settings = lidbSettings({ auxSeed: 3, a: 100, b: 50, r: 1 });
const RELAX_RANK = 2;

function gaussian(name: string, n: number, std: number): Float32Array {
  return fillGaussianFloat32(namedRng(99, name), n, std);
}

describe('LiDB as graph inputs', () => {
  it('one linear layer: output equals x·(W + ΔW)ᵀ + b, and gradients match finite differences', async () => {
    const layer = { name: 'unet.blk.attn2.to_k', component: 'unet' as const, modulePath: 'blk.attn2.to_k', kind: 'attn2.to_k', inFeatures: 12, outFeatures: 10, bias: true };
    const [basis] = auxBases([layer], lidbSettings({ auxSeed: 1, a: 6, b: 4 }));
    const weight = gaussian('w', 120, 0.3);
    const bias = gaussian('bias', 10, 0.1);
    const build = (g: Graph) => {
      const adapter = createLidbAdapter({ component: 'unet', layers: [layer], bases: [basis!], rank: 2 });
      const mb = new ModelBuilder(g, mapParams(new Map([[`${layer.modulePath}.weight`, weight], [`${layer.modulePath}.bias`, bias]])), [adapter]);
      const x = g.input('x', 'float32', [5, 12]);
      return { adapter, y: mb.linear({ ...layer, name: layer.modulePath }, x) };
    };

    const g = new Graph('lidb_linear');
    const { adapter, y } = build(g);
    g.output(y, 'y');
    const aTrain = gaussian('a', 2 * 6, 0.5);
    const bTrain = gaussian('b', 4 * 2, 0.5);
    const x = gaussian('x', 60, 1);
    const feeds = { x: { dtype: 'float32' as const, dims: [5, 12], data: x }, ...lidbAdapterFeeds(adapter.values, { lidb: new Map([[layer.name, { aTrain, bTrain }]]) }) };
    const session = await createSession(g);
    const out = (await runSession(session, feeds)).y!.data as Float32Array;
    await session.release();
    const delta = lidbDelta(basis!, { aTrain, bTrain }, 2);
    for (let r = 0; r < 5; r++) {
      for (let o = 0; o < 10; o++) {
        let expected = bias[o]!;
        for (let i = 0; i < 12; i++) expected += x[r * 12 + i]! * (weight[o * 12 + i]! + delta[o * 12 + i]!);
        expect(out[r * 10 + o]).toBeCloseTo(expected, 4);
      }
    }

    const report = await gradCheck({ name: 'lidb linear', dtype: 'float32', build: (gg) => build(gg).y, constant: ['x'] }, 7);
    expect(report.failures).toEqual([]);
    expect(report.checks).toBeGreaterThan(0);
  });
});

describe('LiDB in the tiny SD 1.5 UNet', () => {
  const unet = openUnetFolder(referencePath('sd15-tiny', 'unet'));
  const textEncoder = parseClipTextConfig(JSON.parse(readFileSync(referencePath('sd15-tiny', 'text_encoder', 'config.json'), 'utf8')));
  const layers = adaptedLayers({ unet: unet.plan, textEncoder });
  const unetLayers = layers.filter((l) => l.component === 'unet');
  const bases = auxBases(layers, settings);
  const io = loadSafetensors(referencePath('sd15-tiny', 'unet', 'io.safetensors')).tensors;
  const inputs = (): Record<string, HostTensor> => ({
    sample: { dtype: 'float32', dims: [2, 4, 8, 8], data: toFloat32(io.get('case1.sample')!) },
    timestep: { dtype: 'float32', dims: [2], data: toFloat32(io.get('case1.timestep_f32')!) },
    encoder_hidden_states: { dtype: 'float32', dims: [2, 77, 32], data: toFloat32(io.get('case1.encoder_hidden_states')!) },
  });
  const shapes = { batch: 2, height: 8, width: 8, textLength: 77 };
  const lidb = new Map(layers.map((l, i) => [l.name, {
    aTrain: gaussian(`${l.name}/a`, bases[i]!.aEff, 0.3),
    bTrain: gaussian(`${l.name}/b`, bases[i]!.bEff, 0.3),
  }]));
  const relaxLidb = new Map(layers.map((l, i) => [l.name, {
    aTrain: gaussian(`${l.name}/ra`, RELAX_RANK * bases[i]!.aEff, 0.2),
    bTrain: gaussian(`${l.name}/rb`, bases[i]!.bEff * RELAX_RANK, 0.2),
  }]));

  async function runUnet(adapters: LinearAdapter[], feeds: Record<string, HostTensor>, graph = new Graph('unet')) {
    const built = buildUnetGraph(unet.plan, inlineParams(unet.weights), { ...shapes, adapters, graph });
    const session = await createSession(built.graph);
    try {
      return (await runSession(session, { ...inputs(), ...feeds }))[UNET_OUTPUT]!.data as Float32Array;
    } finally {
      await session.release();
    }
  }

  function maxAbsDiff(x: Float32Array, y: Float32Array): number {
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
    return worst;
  }

  it('zero factors leave the reference UNet output unchanged (ΔW = 0)', async () => {
    const adapter = createLidbAdapter({ component: 'unet', layers, bases, rank: 1, relax: { mode: 'lidb', rank: RELAX_RANK } });
    const feeds = () => lidbAdapterFeeds(adapter.values, {});
    const g = new Graph('unet');
    buildUnetGraph(unet.plan, inlineParams(unet.weights), { ...shapes, adapters: [adapter], graph: g });
    expect(adapter.values.lidb.size).toBe(unetLayers.length);
    const session = await createSession(g);
    const out = (await runSession(session, { ...inputs(), ...feeds() }))[UNET_OUTPUT]!.data as Float32Array;
    await session.release();
    expect(maxAbsDiff(out, toFloat32(io.get('case1.out_sample')!))).toBeLessThan(1e-4);
  });

  it('equals the UNet with a kohya export re-imported as a LoRA input (same outputs)', async () => {
    const lidbAdapter = createLidbAdapter({ component: 'unet', layers, bases, rank: 1, relax: { mode: 'lidb', rank: RELAX_RANK } });
    const g = new Graph('unet_lidb');
    buildUnetGraph(unet.plan, inlineParams(unet.weights), { ...shapes, adapters: [lidbAdapter], graph: g });
    const session = await createSession(g);
    const withLidb = (await runSession(session, { ...inputs(), ...lidbAdapterFeeds(lidbAdapter.values, { lidb, relaxLidb }) }))[UNET_OUTPUT]!.data as Float32Array;
    await session.release();

    const weights = {
      settings,
      selection: adaptedLayerSelectionSchema.parse({}),
      layers,
      lidb: layers.map((l) => lidb.get(l.name)!),
      relax: { mode: 'lidb' as const, rank: RELAX_RANK, factors: layers.map((l) => relaxLidb.get(l.name)!) },
      meta: { baseModelId: 'tiny', baseModelSha256: '0'.repeat(64), method: 'hyperdreambooth' as const, steps: 0 },
    };
    const imported = importLora(exportLora(weights, bases, 'kohya', 'F32'), layers);
    const loraWeights: LoraWeights = { scale: 1, layers: new Map() };
    for (const entry of imported.layers) {
      if (entry.layer.component !== 'unet') continue;
      expect(entry.scale).toBe(1);
      loraWeights.layers.set(entry.layer.modulePath, entry.lora);
    }
    const g2 = new Graph('unet_lora');
    const loraAdapter = new LoraAdapter(g2, unetLayers.map((l) => ({ ...l, name: l.modulePath })));
    buildUnetGraph(unet.plan, inlineParams(unet.weights), { ...shapes, adapters: [loraAdapter], graph: g2 });
    const session2 = await createSession(g2);
    const feeds2 = Object.fromEntries(Object.entries(loraFeeds(loraAdapter, loraWeights)).map(([k, v]) => [k, { dtype: 'float32' as const, ...v }]));
    const withLora = (await runSession(session2, { ...inputs(), ...feeds2 }))[UNET_OUTPUT]!.data as Float32Array;
    await session2.release();

    const base = toFloat32(io.get('case1.out_sample')!);
    // The adapters must actually change the output, and both paths must agree far below that change.
    const change = maxAbsDiff(withLidb, base);
    expect(change).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(withLidb, withLora)).toBeLessThan(1e-4 * Math.max(1, change));
  });

  it('text encoder: LiDB inputs give the same hidden states as the kohya export re-imported as LoRA inputs', async () => {
    const textLayers = layers.filter((l) => l.component === 'text_encoder');
    expect(textLayers).toHaveLength(12);
    const textWeights = openTextEncoderFolder(referencePath('sd15-tiny', 'text_encoder'));
    const ids = loadSafetensors(referencePath('sd15-tiny', 'text_encoder', 'io.safetensors')).tensors.get('input_ids')!;
    const idsFeed = { input_ids: { dtype: 'int64' as const, dims: ids.shape, data: ids.data as BigInt64Array } };
    const run = async (graph: Graph, feeds: Record<string, HostTensor>) => {
      const session = await createSession(graph);
      try {
        return (await runSession(session, { ...idsFeed, ...feeds })).last_hidden_state!.data as Float32Array;
      } finally {
        await session.release();
      }
    };
    const g1 = new Graph('clip_lidb');
    const lidbAdapter = createLidbAdapter({ component: 'text_encoder', layers, bases, rank: 1, relax: { mode: 'lidb', rank: RELAX_RANK } });
    buildClipTextGraph(textEncoder, inlineParams(textWeights.weights), { batch: 3, length: 77, adapters: [lidbAdapter], graph: g1 });
    const withLidb = await run(g1, lidbAdapterFeeds(lidbAdapter.values, { lidb, relaxLidb }));

    const weights = {
      settings, selection: adaptedLayerSelectionSchema.parse({}), layers,
      lidb: layers.map((l) => lidb.get(l.name)!),
      relax: { mode: 'lidb' as const, rank: RELAX_RANK, factors: layers.map((l) => relaxLidb.get(l.name)!) },
      meta: { baseModelId: 'tiny', baseModelSha256: '0'.repeat(64), method: 'hyperdreambooth' as const, steps: 0 },
    };
    const imported = importLora(exportLora(weights, bases, 'kohya', 'F32'), layers);
    const loraWeights: LoraWeights = { scale: 1, layers: new Map() };
    for (const entry of imported.layers) if (entry.layer.component === 'text_encoder') loraWeights.layers.set(entry.layer.modulePath, entry.lora);
    const g2 = new Graph('clip_lora');
    const loraAdapter = new LoraAdapter(g2, textLayers.map((l) => ({ ...l, name: l.modulePath })));
    buildClipTextGraph(textEncoder, inlineParams(textWeights.weights), { batch: 3, length: 77, adapters: [loraAdapter], graph: g2 });
    const feeds2 = Object.fromEntries(Object.entries(loraFeeds(loraAdapter, loraWeights)).map(([k, v]) => [k, { dtype: 'float32' as const, ...v }]));
    const withLora = await run(g2, feeds2);
    const base = toFloat32(loadSafetensors(referencePath('sd15-tiny', 'text_encoder', 'io.safetensors')).tensors.get('last_hidden_state')!);
    const change = maxAbsDiff(withLidb, base);
    expect(change).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(withLidb, withLora)).toBeLessThan(1e-4 * Math.max(1, change));
  });

  it('gradients of a UNet loss reach A_train and B_train and match finite differences', async () => {
    const chosen = [unetLayers[5]!, unetLayers[unetLayers.length - 1]!];
    const chosenBases = chosen.map((l) => bases[layers.indexOf(l)]!);
    const adapter = createLidbAdapter({ component: 'unet', layers: chosen, bases: chosenBases, rank: 1 });
    const g = new Graph('unet_lidb_grad');
    const built = buildUnetGraph(unet.plan, inlineParams(unet.weights), { ...shapes, adapters: [adapter], graph: g });
    const weightsR = gaussian('cotangent', 2 * 4 * 8 * 8, 1);
    const loss = reduceSum(mul(built.output, g.constant({ dtype: 'float32', dims: [2, 4, 8, 8], data: weightsR })));
    g.output(loss, 'loss');
    const wrt = [...adapter.values.lidb.values()].flatMap((v) => [v.aTrain.name, v.bTrain.name]);
    const backward = grad(g, { loss: 'loss', wrt });
    const factors = { lidb: new Map(chosen.map((l) => [l.name, lidb.get(l.name)!])) };
    const feeds = { ...inputs(), ...lidbAdapterFeeds(adapter.values, factors) };
    const [fs, bs] = await Promise.all([createSession(g), createSession(backward)]);
    try {
      const analytic = await runSession(bs, feeds);
      const lossAt = async (name: string, direction: Float32Array, h: number) => {
        const base = feeds[name]!.data as Float32Array;
        const shifted = Float32Array.from(base, (v, i) => v + h * direction[i]!);
        return Number((await runSession(fs, { ...feeds, [name]: { ...feeds[name]!, data: shifted } })).loss!.data[0]);
      };
      for (const name of wrt) {
        const gradient = analytic[`grad.${name}`]!.data as Float32Array;
        const direction = gaussian(`dir/${name}`, gradient.length, 1);
        const norm = Math.hypot(...direction);
        for (let i = 0; i < direction.length; i++) direction[i] = direction[i]! / norm;
        const analyticDirectional = gradient.reduce((s, v, i) => s + v * direction[i]!, 0);
        // float32 round-off of the loss is ~1e-3 of a derivative at h = 0.01; Richardson over (h, h/2) removes the
        // O(h²) truncation, so a larger step is the more accurate one here.
        const h = 1e-1;
        const d1 = ((await lossAt(name, direction, h)) - (await lossAt(name, direction, -h))) / (2 * h);
        const d2 = ((await lossAt(name, direction, h / 2)) - (await lossAt(name, direction, -h / 2))) / h;
        const numeric = (4 * d2 - d1) / 3;
        const gradNorm = Math.hypot(...gradient);
        expect(gradNorm).toBeGreaterThan(0);
        expect(Math.abs(numeric - analyticDirectional)).toBeLessThan(2e-3 * gradNorm + 1e-4);
      }
    } finally {
      await Promise.all([fs.release(), bs.release()]);
    }
  });
});
