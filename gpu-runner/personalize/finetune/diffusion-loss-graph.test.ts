import { describe, expect, it } from 'vitest';
import { grad, type HostTensor } from '../../onnx/index.ts';
import { createSession, runSession } from '../../onnx/testing/ort.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { lidbAdapterFeeds } from '../lidb/graph-adapter.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import { buildDiffusionLossGraph, LOSS_INPUTS, LOSS_OUTPUT } from './diffusion-loss-graph.ts';

const model = tinyPersonalizationModel();
const gaussian = (name: string, n: number, std = 1) => fillGaussianFloat32(namedRng(11, name), n, std);

describe('the composed text encoder → UNet diffusion loss', () => {
  it('has gradients for text-encoder and UNet LiDB factors that match finite differences', async () => {
    const built = buildDiffusionLossGraph(model, { lidb: 'input' });
    const text = [...built.adapters.textEncoder.lidb.values()];
    const unet = [...built.adapters.unet.lidb.values()];
    expect(text).toHaveLength(12);
    expect(unet).toHaveLength(80);
    const wrt = [text[0]!.aTrain.name, text[11]!.bTrain.name, unet[3]!.aTrain.name];
    const backward = grad(built.graph, { loss: LOSS_OUTPUT, wrt });
    const factors = new Map(model.layers.map((l, i) => [l.name, { aTrain: gaussian(`${l.name}/a`, model.bases[i]!.aEff, 0.3), bTrain: gaussian(`${l.name}/b`, model.bases[i]!.bEff, 0.3) }]));
    const lidbFeeds = lidbAdapterFeeds({ lidb: new Map([...built.adapters.textEncoder.lidb, ...built.adapters.unet.lidb]), relaxLidb: new Map(), relaxLora: new Map() }, { lidb: factors });
    const n = built.latentShape.reduce((a, b) => a * b, 1);
    const feeds: Record<string, HostTensor> = {
      ...lidbFeeds,
      [LOSS_INPUTS.inputIds]: { dtype: 'int64', dims: [1, 77], data: BigInt64Array.from(model.tokenizer.tokenize('a [V] face'), (id) => BigInt(id)) },
      [LOSS_INPUTS.noisyLatents]: { dtype: 'float32', dims: built.latentShape, data: gaussian('x', n) },
      [LOSS_INPUTS.timestep]: { dtype: 'float32', dims: [1], data: Float32Array.of(321) },
      [LOSS_INPUTS.target]: { dtype: 'float32', dims: built.latentShape, data: gaussian('eps', n) },
    };
    const [fs, bs] = await Promise.all([createSession(built.graph), createSession(backward)]);
    try {
      const analytic = await runSession(bs, feeds);
      const lossAt = async (name: string, direction: Float32Array, h: number) => {
        const base = feeds[name]!.data as Float32Array;
        return Number((await runSession(fs, { ...feeds, [name]: { ...feeds[name]!, data: Float32Array.from(base, (v, i) => v + h * direction[i]!) } }))[LOSS_OUTPUT]!.data[0]);
      };
      for (const name of wrt) {
        const gradient = analytic[`grad.${name}`]!.data as Float32Array;
        const direction = gaussian(`dir/${name}`, gradient.length);
        const norm = Math.hypot(...direction);
        for (let i = 0; i < direction.length; i++) direction[i] = direction[i]! / norm;
        const expected = gradient.reduce((s, v, i) => s + v * direction[i]!, 0);
        // Richardson over (h, h/2): O(h⁴) truncation; float32 round-off of the loss dominates what remains.
        const h = 0.1;
        const d1 = ((await lossAt(name, direction, h)) - (await lossAt(name, direction, -h))) / (2 * h);
        const d2 = ((await lossAt(name, direction, h / 2)) - (await lossAt(name, direction, -h / 2))) / h;
        const gradNorm = Math.hypot(...gradient);
        expect(gradNorm).toBeGreaterThan(0);
        expect(Math.abs((4 * d2 - d1) / 3 - expected)).toBeLessThan(2e-3 * gradNorm + 1e-5);
      }
    } finally {
      await Promise.all([fs.release(), bs.release()]);
    }
  });
});
