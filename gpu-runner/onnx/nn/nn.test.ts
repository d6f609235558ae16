import { describe, expect, it } from 'vitest';
import * as E from '../index.ts';
import { gradCheck } from '../testing/gradcheck.ts';
import { runGraph } from '../testing/ort.ts';
import { randomTensor, seededRng } from '../testing/random.ts';
import * as R from '../testing/reference.ts';

const FLOAT32_TOLERANCE = 2e-5;
const FLOAT64_TOLERANCE = 1e-12;
const nd = (t: E.HostTensor) => R.nd(t.dims, Array.from(t.data as Float64Array));

function attentionReference(q: R.Nd, k: R.Nd, v: R.Nd, heads: number, mask?: (i: number, j: number) => number): R.Nd {
  const [b, lq, d] = q.dims as [number, number, number];
  const lk = k.dims[1]!;
  const dh = d / heads;
  const out = new Float64Array(b * lq * d);
  for (let n = 0; n < b; n++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < lq; i++) {
        const scores = Array.from({ length: lk }, (_, j) => {
          let s = 0;
          for (let c = 0; c < dh; c++) s += q.data[(n * lq + i) * d + h * dh + c]! * k.data[(n * lk + j) * d + h * dh + c]!;
          return s / Math.sqrt(dh) + (mask ? mask(i, j) : 0);
        });
        const p = R.softmaxLane(scores);
        for (let c = 0; c < dh; c++) out[(n * lq + i) * d + h * dh + c] = p.reduce((acc, pj, j) => acc + pj * v.data[(n * lk + j) * d + h * dh + c]!, 0);
      }
  return { dims: [b, lq, d], data: out };
}

describe('composites: forward', () => {
  it('groupNorm matches torch.nn.GroupNorm semantics (per-sample, per-group statistics, biased variance)', async () => {
    const rng = seededRng(1);
    const g = new E.Graph('gn');
    const x = g.input('x', 'float64', [2, 6, 3, 2]);
    const s = g.input('s', 'float64', [6]);
    const b = g.input('b', 'float64', [6]);
    g.output(E.groupNorm(x, 3, s, b, 1e-6), 'y');
    const feeds = { x: randomTensor('float64', [2, 6, 3, 2], rng), s: randomTensor('float64', [6], rng), b: randomTensor('float64', [6], rng) };
    const y = (await runGraph(g, feeds)).y!;
    // reference: normalize each (sample, group) block of 2 channels × 6 positions
    const xr = nd(feeds.x);
    const grouped = R.lanes(R.nd([2, 3, 12], xr.data), -1, R.normalizeLane(1e-6));
    const expected = R.zip(R.zip(R.nd([2, 6, 3, 2], grouped.data), R.nd([6, 1, 1], feeds.s.data as Float64Array), (p, q) => p * q), R.nd([6, 1, 1], feeds.b.data as Float64Array), (p, q) => p + q);
    expect(R.expectClose(y.data as Float64Array, expected.data, FLOAT64_TOLERANCE)).toBeUndefined();
  });

  it('attention with an additive causal mask and with a boolean mask', async () => {
    // head dim 4 makes the scale 1/2 exactly: onnxruntime folds it into FusedMatMul's float32 alpha
    const rng = seededRng(2);
    const g = new E.Graph('attn');
    const q = g.input('q', 'float64', [2, 3, 8]);
    const k = g.input('k', 'float64', [2, 5, 8]);
    const v = g.input('v', 'float64', [2, 5, 8]);
    const causal = Array.from({ length: 15 }, (_, n) => (n % 5 > Math.floor(n / 5) ? -1e9 : 0));
    g.output(E.attention(q, k, v, { heads: 2, mask: g.constant(E.tensor('float64', [3, 5], causal)) }), 'additive');
    const keep = g.input('keep', 'bool', [1, 1, 1, 5]);
    g.output(E.attention(q, k, v, { heads: 2, mask: keep }), 'boolean');
    const feeds = { q: randomTensor('float64', [2, 3, 8], rng), k: randomTensor('float64', [2, 5, 8], rng), v: randomTensor('float64', [2, 5, 8], rng), keep: E.tensor('bool', [1, 1, 1, 5], [1, 0, 1, 1, 0]) };
    const out = await runGraph(g, feeds);
    const [qr, kr, vr] = [nd(feeds.q), nd(feeds.k), nd(feeds.v)];
    expect(R.expectClose(out.additive!.data as Float64Array, attentionReference(qr, kr, vr, 2, (i, j) => (j > i ? -1e9 : 0)).data, FLOAT64_TOLERANCE)).toBeUndefined();
    expect(R.expectClose(out.boolean!.data as Float64Array, attentionReference(qr, kr, vr, 2, (_, j) => ([1, 0, 1, 1, 0][j] ? 0 : -1e9)).data, FLOAT64_TOLERANCE)).toBeUndefined();
  });

  it('attention keeps a symbolic batch', () => {
    const g = new E.Graph('sym');
    const q = g.input('q', 'float32', ['batch', 3, 4]);
    expect(E.attention(q, q, q, { heads: 2 }).shape).toEqual(['batch', 3, 4]);
  });

  it('geglu = hidden · gelu(gate) of a split projection', async () => {
    const rng = seededRng(3);
    const g = new E.Graph('geglu');
    const x = g.input('x', 'float32', [2, 3, 4]);
    const w = g.input('w', 'float32', [6, 4]);
    g.output(E.geglu(E.linear(x, w)), 'y');
    const feeds = { x: randomTensor('float32', [2, 3, 4], rng), w: randomTensor('float32', [6, 4], rng) };
    const y = (await runGraph(g, feeds)).y!;
    const proj = R.matmul(R.nd([2, 3, 4], feeds.x.data as Float32Array), R.transpose(R.nd([6, 4], feeds.w.data as Float32Array), [1, 0]));
    const expected = Array.from({ length: 18 }, (_, n) => {
      const [row, c] = [Math.floor(n / 3), n % 3];
      const gate = proj.data[row * 6 + 3 + c]!;
      return proj.data[row * 6 + c]! * 0.5 * gate * (1 + R.erf(gate / Math.SQRT2));
    });
    expect(R.expectClose(y.data as Float32Array, expected, FLOAT32_TOLERANCE)).toBeUndefined();
  });

  it.each([
    [{ flipSinToCos: true, downscaleFreqShift: 0 }],
    [{ flipSinToCos: false, downscaleFreqShift: 1 }],
  ])('timestepEmbedding %o matches diffusers get_timestep_embedding', async (o) => {
    const g = new E.Graph('temb');
    const t = g.input('t', 'int64', [3]);
    g.output(E.timestepEmbedding(t, 8, o), 'y');
    const steps = [0, 1, 999];
    const y = (await runGraph(g, { t: E.tensor('int64', [3], steps) })).y!;
    const half = 4;
    const expected = steps.flatMap((s) => {
      const args = Array.from({ length: half }, (_, i) => s * Math.exp((-Math.log(10_000) * i) / (half - o.downscaleFreqShift)));
      const [first, second] = o.flipSinToCos ? [args.map(Math.cos), args.map(Math.sin)] : [args.map(Math.sin), args.map(Math.cos)];
      return [...first, ...second];
    });
    // float32 arguments up to ~1000 rad: sin/cos of a float32-rounded argument differ by up to ~1000·2⁻²⁴
    expect(R.expectClose(y.data as Float32Array, expected, 1e-4)).toBeUndefined();
  });

  it('timestepEmbedding takes fractional float32 timesteps and pads an odd dim with one zero column', async () => {
    const g = new E.Graph('temb_odd');
    const t = g.input('t', 'float32', [2]);
    g.output(E.timestepEmbedding(t, 5, { flipSinToCos: true, downscaleFreqShift: 0 }), 'y');
    const y = (await runGraph(g, { t: E.tensor('float32', [2], [0.5, 10.25]) })).y!;
    expect(y.dims).toEqual([2, 5]);
    const freqs = E.timestepFrequencies(5, 0);
    const expected = [0.5, 10.25].flatMap((s) => [...[0, 1].map((i) => Math.cos(s * freqs[i]!)), ...[0, 1].map((i) => Math.sin(s * freqs[i]!)), 0]);
    expect(R.expectClose(y.data as Float32Array, expected, 1e-6)).toBeUndefined();
  });

  it('mseLoss is the mean of squared differences', async () => {
    const g = new E.Graph('mse');
    const a = g.input('a', 'float64', [2, 2]);
    const b = g.input('b', 'float64', [2, 2]);
    g.output(E.mseLoss(a, b), 'loss');
    const out = await runGraph(g, { a: E.tensor('float64', [2, 2], [1, 2, 3, 4]), b: E.tensor('float64', [2, 2], [0, 2, 5, 4]) });
    expect(out.loss!.dims).toEqual([]);
    expect(out.loss!.data[0]).toBeCloseTo(5 / 4, 14);
  });

  it('weightedMseLoss is Σ_b w_b · mean of sample b\'s squared differences', async () => {
    const g = new E.Graph('weighted_mse');
    const a = g.input('a', 'float64', [2, 1, 2]);
    const b = g.input('b', 'float64', [2, 1, 2]);
    const w = g.input('w', 'float64', [2]);
    g.output(E.weightedMseLoss(a, b, w), 'loss');
    const out = await runGraph(g, { a: E.tensor('float64', [2, 1, 2], [1, 2, 3, 4]), b: E.tensor('float64', [2, 1, 2], [0, 2, 5, 4]), w: E.tensor('float64', [2], [1, 0.25]) });
    expect(out.loss!.dims).toEqual([]);
    expect(out.loss!.data[0]).toBeCloseTo(1 * (1 / 2) + 0.25 * (4 / 2), 14);
  });

  it('rejects bad configurations with clear errors', () => {
    const g = new E.Graph('bad');
    const x = g.input('x', 'float32', [1, 6, 2, 2]);
    expect(() => E.groupNorm(x, 4)).toThrow(/do not split into 4 groups/);
    const q = g.input('q', 'float32', [1, 3, 5]);
    expect(() => E.attention(q, q, q, { heads: 2 })).toThrow(/does not split into 2 heads/);
    expect(() => E.weightedMseLoss(x, x, g.input('w3', 'float32', [3]))).toThrow(/must be \[1\], one per sample/);
  });
});

describe('composites: gradients', () => {
  const cases = [
    { name: 'linear', dtype: 'float64' as const, build: (g: E.Graph) => E.linear(g.input('x', 'float64', [2, 3, 4]), g.input('w', 'float64', [5, 4]), g.input('b', 'float64', [5])) },
    { name: 'linear 2-D', dtype: 'float64' as const, build: (g: E.Graph) => E.linear(g.input('x', 'float64', [3, 4]), g.input('w', 'float64', [5, 4]), g.input('b', 'float64', [5])) },
    { name: 'groupNorm', dtype: 'float64' as const, build: (g: E.Graph) => E.groupNorm(g.input('x', 'float64', [2, 4, 3, 3]), 2, g.input('s', 'float64', [4]), g.input('b', 'float64', [4])) },
    {
      name: 'attention + mask', dtype: 'float64' as const,
      build: (g: E.Graph) => {
        const mask = g.constant(E.tensor('float64', [3, 3], [0, -1e9, -1e9, 0, 0, -1e9, 0, 0, 0]));
        return E.attention(g.input('q', 'float64', [2, 3, 4]), g.input('k', 'float64', [2, 3, 4]), g.input('v', 'float64', [2, 3, 4]), { heads: 2, mask });
      },
    },
    { name: 'geglu', dtype: 'float32' as const, build: (g: E.Graph) => E.geglu(E.linear(g.input('x', 'float32', [2, 3]), g.input('w', 'float32', [4, 3]), g.input('b', 'float32', [4]))) },
    { name: 'silu + quickGelu (float32, fused by onnxruntime)', dtype: 'float32' as const, build: (g: E.Graph) => E.quickGelu(E.silu(g.input('x', 'float32', [2, 3]))) },
    {
      // a miniature SD block: resnet (group norm, SiLU, convs, residual), downsample, transformer (layer norm,
      // masked attention, GEGLU), upsample; every parameter differentiated at once
      name: 'SD-like block', dtype: 'float32' as const,
      build: (g: E.Graph) => {
        const p = (n: string, d: number[]) => g.input(n, 'float32', d);
        const x = p('x', [1, 4, 6, 6]);
        let h = E.conv2d(E.silu(E.groupNorm(x, 2, p('gn.w', [4]), p('gn.b', [4]))), p('c1.w', [4, 4, 3, 3]), p('c1.b', [4]), { padding: 1 });
        h = E.add(h, x);
        h = E.conv2d(h, p('down.w', [4, 4, 3, 3]), undefined, { stride: 2, padding: 1 });
        const tokens = E.transpose(E.reshape(h, [1, 4, 9]), [0, 2, 1]);
        const n = E.layerNorm(tokens, p('ln.w', [4]), p('ln.b', [4]));
        const mask = g.constant(E.tensor('float32', [9, 9], Array.from({ length: 81 }, (_, i) => (i % 9 > Math.floor(i / 9) ? -1e9 : 0))));
        let t = E.add(tokens, E.linear(E.attention(E.linear(n, p('q.w', [4, 4])), E.linear(n, p('k.w', [4, 4])), E.linear(n, p('v.w', [4, 4])), { heads: 2, mask }), p('o.w', [4, 4]), p('o.b', [4])));
        t = E.add(t, E.linear(E.geglu(E.linear(t, p('ff.w', [8, 4]), p('ff.b', [8]))), p('ff2.w', [4, 4])));
        return E.upsampleNearest(E.reshape(E.transpose(t, [0, 2, 1]), [1, 4, 3, 3]));
      },
    },
    { name: 'mseLoss', dtype: 'float64' as const, build: (g: E.Graph) => E.mseLoss(g.input('p', 'float64', [2, 3]), g.input('t', 'float64', [2, 3])) },
    {
      name: 'weightedMseLoss',
      dtype: 'float64' as const,
      build: (g: E.Graph) => E.weightedMseLoss(g.input('p', 'float64', [3, 2, 2]), g.input('t', 'float64', [3, 2, 2]), g.input('w', 'float64', [3])),
    },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    for (const seed of [1, 2]) expect((await gradCheck(c, seed)).failures).toEqual([]);
  });
});
