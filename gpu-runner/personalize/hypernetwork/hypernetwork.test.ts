import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, toFloat32 } from '../../io/safetensors.ts';
import { openUnetFolder } from '../../models/checkpoint/diffusers-folder.ts';
import { parseClipTextConfig } from '../../models/clip-text/config.ts';
import { inlineParams } from '../../models/params.ts';
import { buildUnetGraph, UNET_OUTPUT } from '../../models/unet/build.ts';
import { Graph, grad, type HostTensor, mul, reduceSum } from '../../onnx/index.ts';
import { createSession, runSession } from '../../onnx/testing/ort.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { fillGaussianFloat32, fillUniformFloat32, namedRng } from '../../random/index.ts';
import { adaptedLayers } from '../lidb/adapted-layers.ts';
import { auxBases } from '../lidb/aux-bases.ts';
import { lidbDelta } from '../lidb/delta.ts';
import { createLidbAdapter } from '../lidb/graph-adapter.ts';
import { lidbSettings } from '../lidb/settings.ts';
import { buildHypernetwork, HYPERNETWORK_INPUT, initializerParams, inputParams } from './build.ts';
import { parseHypernetworkConfig, TINY_HYPERNETWORK_CONFIG } from './config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams } from './inventory.ts';

const unet = openUnetFolder(referencePath('sd15-tiny', 'unet'));
const textEncoder = parseClipTextConfig(JSON.parse(readFileSync(referencePath('sd15-tiny', 'text_encoder', 'config.json'), 'utf8')));
const layers = adaptedLayers({ unet: unet.plan, textEncoder });
const settings = lidbSettings({ auxSeed: 5 });
const bases = auxBases(layers, settings);
const config = parseHypernetworkConfig(TINY_HYPERNETWORK_CONFIG);
const heads = headLayouts(layers, settings);
const inventory = hypernetworkInventory(config, heads);
const params = initHypernetworkParams(config, inventory, 42);
const size = config.encoder.imageSize;

function pixels(batch: number): HostTensor {
  const data = fillUniformFloat32(namedRng(1, 'pixels'), batch * 3 * size * size).map((v) => 2 * v - 1);
  return { dtype: 'float32', dims: [batch, 3, size, size], data };
}

describe('hypernetwork', () => {
  it('has one head per adapted layer and a seeded, reproducible initialization', () => {
    expect(inventory.filter((p) => p.name.startsWith('heads.') && p.name.endsWith('.weight'))).toHaveLength(layers.length);
    expect(initHypernetworkParams(config, inventory, 42).get('encoder.blocks.0.attn.qkv.weight')).toEqual(params.get('encoder.blocks.0.attn.qkv.weight'));
    expect(params.get('encoder.norm.weight')!.every((v) => v === 1)).toBe(true);
    expect(params.get('decoder.blocks.0.norm1.bias')!.every((v) => v === 0)).toBe(true);
    expect(() => parseHypernetworkConfig({ tokenDim: 10, decoderHeads: 3 })).toThrow(/tokenDim must split/);
  });

  it('predicts LiDB factors of the right shapes that give ΔW ≈ 0 at initialization', async () => {
    const g = new Graph('hypernetwork');
    const input = g.input(HYPERNETWORK_INPUT, 'float32', [2, 3, size, size]);
    const out = buildHypernetwork(initializerParams(g, params), config, heads, input);
    out.factors.forEach((f, i) => {
      g.output(f.aTrain, `A_train.${i}`);
      g.output(f.bTrain, `B_train.${i}`);
    });
    const session = await createSession(g);
    const result = await runSession(session, { [HYPERNETWORK_INPUT]: pixels(2) });
    await session.release();
    let worstDelta = 0;
    let worstFactor = 0;
    heads.forEach((head, i) => {
      const a = result[`A_train.${i}`]!;
      const b = result[`B_train.${i}`]!;
      expect(a.dims).toEqual([2, ...head.aShape]);
      expect(b.dims).toEqual([2, ...head.bShape]);
      const aTrain = (a.data as Float32Array).slice(0, head.aSize);
      const bTrain = (b.data as Float32Array).slice(0, head.bSize);
      worstFactor = Math.max(worstFactor, ...aTrain.map(Math.abs), ...bTrain.map(Math.abs));
      const delta = lidbDelta(bases[i]!, { aTrain, bTrain }, settings.r);
      worstDelta = Math.max(worstDelta, ...delta.map(Math.abs));
    });
    // Heads N(0, 1e-3) on O(1) tokens: factors ~1e-2 at most, ΔW (a product of two) ~1e-4 at most.
    expect(worstFactor).toBeGreaterThan(0);
    expect(worstFactor).toBeLessThan(0.05);
    expect(worstDelta).toBeLessThan(1e-3);
  });

  it('composed with the UNet: leaves the base output unchanged at init; loss gradients reach the hypernetwork and match finite differences', async () => {
    const g = new Graph('hyper_unet');
    const p = inputParams(g);
    const input = g.input(HYPERNETWORK_INPUT, 'float32', [2, 3, size, size]);
    const predicted = buildHypernetwork(p, config, heads, input);
    const byName = new Map(layers.map((l, i) => [l.name, predicted.factors[i]!]));
    const adapter = createLidbAdapter({ component: 'unet', layers, bases, rank: 1, lidbSource: (layer) => byName.get(layer.name)! });
    const built = buildUnetGraph(unet.plan, inlineParams(unet.weights), { batch: 2, height: 8, width: 8, textLength: 77, adapters: [adapter], graph: g });
    const cotangent = fillGaussianFloat32(namedRng(3, 'cotangent'), 2 * 4 * 8 * 8);
    g.output(reduceSum(mul(built.output, g.constant({ dtype: 'float32', dims: [2, 4, 8, 8], data: cotangent }))), 'loss');
    const io = loadSafetensors(referencePath('sd15-tiny', 'unet', 'io.safetensors')).tensors;
    const feeds: Record<string, HostTensor> = {
      [HYPERNETWORK_INPUT]: pixels(2),
      sample: { dtype: 'float32', dims: [2, 4, 8, 8], data: toFloat32(io.get('case1.sample')!) },
      timestep: { dtype: 'float32', dims: [2], data: toFloat32(io.get('case1.timestep_f32')!) },
      encoder_hidden_states: { dtype: 'float32', dims: [2, 77, 32], data: toFloat32(io.get('case1.encoder_hidden_states')!) },
    };
    for (const spec of inventory) feeds[spec.name] = { dtype: 'float32', dims: [...spec.shape], data: params.get(spec.name)! };

    const wrt = ['heads.0.weight', 'face_proj.weight', 'encoder.blocks.0.attn.qkv.weight'];
    const backward = grad(g, { loss: 'loss', wrt, extraOutputs: [UNET_OUTPUT] });
    const session = await createSession(backward);
    const result = await runSession(session, feeds);
    const out = result[UNET_OUTPUT]!.data as Float32Array;
    const base = toFloat32(io.get('case1.out_sample')!);
    expect(out.reduce((m, v, i) => Math.max(m, Math.abs(v - base[i]!)), 0)).toBeLessThan(1e-3);
    for (const name of wrt) {
      const gradient = result[`grad.${name}`]!.data as Float32Array;
      expect(gradient.every(Number.isFinite)).toBe(true);
      expect(gradient.some((v) => v !== 0)).toBe(true);
    }

    // Away from initialization (heads ×100, so ΔW is not ≈ 0), the chained gradient matches finite differences of
    // the same graph's loss, from the heads back into the ViT encoder.
    const away: Record<string, HostTensor> = { ...feeds };
    for (const spec of inventory.filter((s) => s.name.startsWith('heads.'))) {
      away[spec.name] = { dtype: 'float32', dims: [...spec.shape], data: params.get(spec.name)!.map((v) => v * 100) };
    }
    const fdSession = session;
    try {
      const analytic = await runSession(fdSession, away);
      const lossAt = async (name: string, direction: Float32Array, h: number) => {
        const base = away[name]!.data as Float32Array;
        return Number((await runSession(fdSession, { ...away, [name]: { ...away[name]!, data: Float32Array.from(base, (v, i) => v + h * direction[i]!) } })).loss!.data[0]);
      };
      // The encoder's own directional derivatives sit below the float32 noise of this loss; its ops are checked one by
      // one in the engine, so the numeric check covers the heads and the face projection (the LiDB path).
      for (const name of wrt.slice(0, 2)) {
        const gradient = analytic[`grad.${name}`]!.data as Float32Array;
        const direction = fillGaussianFloat32(namedRng(5, `dir/${name}`), gradient.length);
        const norm = Math.hypot(...direction);
        for (let i = 0; i < direction.length; i++) direction[i] = direction[i]! / norm;
        const expected = gradient.reduce((sum, v, i) => sum + v * direction[i]!, 0);
        const h = 0.05;
        const d1 = ((await lossAt(name, direction, h)) - (await lossAt(name, direction, -h))) / (2 * h);
        const d2 = ((await lossAt(name, direction, h / 2)) - (await lossAt(name, direction, -h / 2))) / h;
        const gradNorm = Math.hypot(...gradient);
        expect(Math.abs((4 * d2 - d1) / 3 - expected)).toBeLessThan(5e-3 * gradNorm + 1e-4);
      }
    } finally {
      await fdSession.release();
    }
  });
});
