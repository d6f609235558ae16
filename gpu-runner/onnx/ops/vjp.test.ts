import { afterAll, describe, expect, it } from 'vitest';
import * as E from '../index.ts';
import type { Graph } from '../ir/graph.ts';
import { gradCheck, type GradCase } from '../testing/gradcheck.ts';
import { randomInt, uniform, type Rng } from '../testing/random.ts';

// Every VJP rule in the op table, checked against central finite differences run by onnxruntime
// (tolerances: testing/gradcheck.ts). Shapes, attributes and inputs are random per seed.
const SEEDS = [1, 2, 3, 4, 5];
/** Convolutions have the most geometry (stride, pads, dilation, groups, bias): more random draws. */
const CONV_SEEDS = Array.from({ length: 16 }, (_, i) => 100 + i);

const pick = <T,>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const awayFromZero = (r: Rng) => (r() < 0.5 ? -1 : 1) * uniform(r, 0.2, 1.5);
const positive = (r: Rng) => uniform(r, 0.5, 2);
const shape = (rng: Rng, rank: number) => Array.from({ length: rank }, () => randomInt(rng, 1, 4));

/** Random operand shapes that broadcast: b drops leading axes and sets some to 1. */
function broadcastPair(rng: Rng): [number[], number[]] {
  const a = shape(rng, randomInt(rng, 1, 3));
  const b = a.slice(randomInt(rng, 0, a.length - 1)).map((d) => (rng() < 0.3 ? 1 : d));
  return rng() < 0.5 ? [a, b] : [b, a];
}

const F64 = 'float64' as const;
const F32 = 'float32' as const;

function binary(op: string, f: (a: E.Value, b: E.Value) => E.Value, sample: GradCase['sample'] = {}): GradCase {
  return {
    name: op, dtype: F64, sample,
    build: (g, rng) => {
      const [sa, sb] = broadcastPair(rng);
      return f(g.input('a', F64, sa), g.input('b', F64, sb));
    },
  };
}

function unary(op: string, f: (x: E.Value) => E.Value, dtype: 'float32' | 'float64' = F64, sample?: (r: Rng) => number): GradCase {
  return { name: op, dtype, sample: sample ? { x: sample } : {}, build: (g, rng) => f(g.input('x', dtype, shape(rng, randomInt(rng, 1, 3)))) };
}

function convCase(rng: Rng, transposed: boolean): (g: Graph) => E.Value {
  return (g) => {
    const group = pick(rng, [1, 2]);
    const cin = group * randomInt(rng, 1, 2);
    const cout = group * randomInt(rng, 1, 2);
    const k = pick(rng, [1, 2, 3]);
    const stride = pick(rng, [1, 2]);
    const dilation = pick(rng, [1, 2]);
    const pads = [0, 0, 0, 0].map(() => randomInt(rng, 0, transposed ? 1 : 2));
    const size = randomInt(rng, 4, 7);
    const x = g.input('x', F32, [randomInt(rng, 1, 2), cin, size, size + 1]);
    const b = rng() < 0.5 ? g.input('b', F32, [cout]) : undefined;
    if (!transposed) {
      const w = g.input('w', F32, [cout, cin / group, k, k]);
      return E.conv(x, w, b, { strides: [stride, stride], pads, dilations: [dilation, dilation], group });
    }
    const w = g.input('w', F32, [cin, cout / group, k, k]);
    const outputPadding = [randomInt(rng, 0, stride - 1), randomInt(rng, 0, stride - 1)].map((p) => Math.min(p, dilation - 1 + stride - 1));
    return E.convTranspose(x, w, b, { strides: [stride, stride], pads, dilations: [dilation, dilation], group, outputPadding });
  };
}

const CASES: (GradCase & { seeds?: readonly number[] })[] = [
  binary('Add', E.add),
  binary('Sub', E.sub),
  binary('Mul', E.mul),
  binary('Div', E.div, { b: awayFromZero }),
  binary('Pow', E.pow, { a: positive }),
  binary('Max', E.max),
  binary('Min', E.min),
  unary('Neg', E.neg),
  unary('Identity', E.identity),
  unary('Sqrt', E.sqrt, F64, positive),
  unary('Exp', E.exp),
  unary('Log', E.log, F64, positive),
  unary('Abs', E.abs, F64, awayFromZero),
  unary('Sign', (x) => E.mul(E.sign(x), x), F64, awayFromZero),
  unary('Reciprocal', E.reciprocal, F64, awayFromZero),
  unary('Sigmoid', E.sigmoid),
  unary('Tanh', E.tanh),
  unary('Sin', E.sin),
  unary('Cos', E.cos),
  unary('Relu', E.relu, F64, awayFromZero),
  unary('Clip', (x) => E.clip(x, -0.5, 0.5), F64, (r) => (r() < 0.5 ? uniform(r, -0.45, 0.45) : (r() < 0.5 ? -1 : 1) * uniform(r, 0.55, 1))),
  unary('Clip max only', (x) => E.clip(x, undefined, 0.5), F64, (r) => (r() < 0.5 ? uniform(r, -1, 0.45) : uniform(r, 0.55, 1))),
  unary('Erf', E.erf, F32),
  unary('Gelu exact', (x) => E.gelu(x, 'none'), F32, (r) => uniform(r, -3, 3)),
  unary('Gelu tanh', (x) => E.gelu(x, 'tanh'), F32, (r) => uniform(r, -3, 3)),
  unary('Cast float32→float64', (x) => E.exp(E.cast(x, 'float64')), F32),
  {
    name: 'Where', dtype: F64,
    feeds: (rng) => ({ c: E.tensor('bool', [3, 4], Array.from({ length: 12 }, () => (rng() < 0.5 ? 1 : 0))) }),
    build: (g) => E.where(g.input('c', 'bool', [3, 4]), g.input('a', F64, [3, 4]), g.input('b', F64, [4])),
  },
  {
    name: 'MatMul', dtype: F64,
    build: (g, rng) => {
      const [m, k, n, b] = [randomInt(rng, 1, 4), randomInt(rng, 1, 4), randomInt(rng, 1, 4), randomInt(rng, 2, 3)];
      const [sa, sb] = pick(rng, [
        [[m, k], [k, n]], [[b, m, k], [k, n]], [[b, m, k], [b, k, n]], [[m, k], [b, k, n]], [[1, m, k], [b, k, n]], [[2, b, m, k], [b, k, n]],
      ]);
      return E.matmul(g.input('a', F64, sa!), g.input('b', F64, sb!));
    },
  },
  {
    name: 'Gemm', dtype: F64,
    build: (g, rng) => {
      const [m, k, n] = [randomInt(rng, 1, 4), randomInt(rng, 1, 4), randomInt(rng, 1, 4)];
      const transA = rng() < 0.5;
      const transB = rng() < 0.5;
      const a = g.input('a', F64, transA ? [k, m] : [m, k]);
      const b = g.input('b', F64, transB ? [n, k] : [k, n]);
      const c = pick(rng, [undefined, [n], [m, n], [1, n], [m, 1]]);
      return E.gemm(a, b, c ? g.input('c', F64, c) : undefined, { alpha: uniform(rng, 0.5, 2), beta: uniform(rng, 0.5, 2), transA, transB });
    },
  },
  { name: 'Conv', dtype: F32, seeds: CONV_SEEDS, build: (g, rng) => convCase(rng, false)(g) },
  {
    name: 'Conv unit stride, trained W, fewer output channels than dY positions (dX by flipped-kernel Conv), groups 2, dilation 2, asymmetric pads', dtype: F32,
    build: (g) => E.conv(g.input('x', F32, [2, 4, 6, 7]), g.input('w', F32, [6, 2, 3, 2]), g.input('b', F32, [6]), { pads: [1, 0, 2, 2], dilations: [2, 2], group: 2 }),
  },
  {
    name: 'Conv unit stride, trained W, 1–8 output channels per group per dY position (dX by flipped maps), groups 2, dilation 2, asymmetric pads', dtype: F32,
    build: (g) => E.conv(g.input('x', F32, [1, 4, 2, 3]), g.input('w', F32, [12, 2, 2, 2]), g.input('b', F32, [12]), { pads: [1, 0, 0, 1], dilations: [2, 2], group: 2 }),
  },
  {
    name: 'Conv unit stride, trained W, over 8 output channels per dY position (dX by ConvTranspose)', dtype: F32,
    build: (g) => E.conv2d(g.input('x', F32, [1, 2, 2, 2]), g.input('w', F32, [36, 2, 3, 3]), undefined, { padding: 1 }),
  },
  {
    name: 'Conv 1×1, trained W, more output channels than dY positions (dX by ConvTranspose)', dtype: F32,
    build: (g) => E.conv2d(g.input('x', F32, [1, 3, 2, 2]), g.input('w', F32, [5, 3, 1, 1]), g.input('b', F32, [5])),
  },
  {
    name: 'Conv unit stride, constant W with more output channels than dY positions (dX by the folded flipped kernel)', dtype: F32,
    build: (g, rng) => {
      const w = g.param('w', E.tensor(F32, [6, 2, 3, 3], Array.from({ length: 108 }, () => uniform(rng, -1, 1))));
      return E.conv2d(g.input('x', F32, [1, 2, 2, 2]), w, undefined, { padding: 1 });
    },
  },
  {
    name: 'Conv stride 2 (dX by ConvTranspose)', dtype: F32,
    build: (g) => E.conv2d(g.input('x', F32, [1, 3, 7, 6]), g.input('w', F32, [2, 3, 3, 3]), undefined, { stride: 2, padding: 1 }),
  },
  { name: 'ConvTranspose', dtype: F32, seeds: CONV_SEEDS, build: (g, rng) => convCase(rng, true)(g) },
  {
    name: 'Resize nearest', dtype: F32,
    build: (g, rng) => E.upsampleNearest(g.input('x', F32, [randomInt(rng, 1, 2), randomInt(rng, 1, 3), randomInt(rng, 1, 4), randomInt(rng, 1, 4)]), pick(rng, [2, 3])),
  },
  { name: 'Reshape', dtype: F64, build: (g) => E.reshape(g.input('x', F64, [2, 3, 4]), [4, -1]) },
  {
    name: 'Transpose', dtype: F64,
    build: (g, rng) => E.transpose(g.input('x', F64, [2, 3, 4]), pick(rng, [[2, 0, 1], [1, 2, 0], [0, 2, 1]])),
  },
  {
    name: 'Concat', dtype: F64,
    build: (g, rng) => {
      const axis = randomInt(rng, 0, 1);
      const a = g.input('a', F64, axis === 0 ? [2, 3] : [3, 2]);
      const b = g.input('b', F64, axis === 0 ? [1, 3] : [3, 4]);
      return E.concat([a, b, a], axis); // a twice: fan-out accumulation
    },
  },
  { name: 'Split', dtype: F64, build: (g) => E.split(g.input('x', F64, [3, 6]), [1, 2, 3], 1).slice(0, 2) },
  {
    name: 'Slice', dtype: F64,
    build: (g, rng) => E.slice(g.input('x', F64, [4, 5]), [randomInt(rng, 0, 1), -4], [3, 100], [0, 1]),
  },
  { name: 'Pad', dtype: F64, build: (g) => E.pad(g.input('x', F64, [2, 3]), [1, 0, 0, 2]) },
  { name: 'Expand', dtype: F64, build: (g) => E.expand(g.input('x', F64, [3, 1]), [2, 3, 4]) },
  { name: 'Squeeze', dtype: F64, build: (g) => E.squeeze(g.input('x', F64, [3, 1, 2]), [1]) },
  { name: 'Unsqueeze', dtype: F64, build: (g) => E.unsqueeze(g.input('x', F64, [3, 2]), [0, 3]) },
  {
    name: 'Gather', dtype: F64,
    // repeated and negative indices: the scatter must accumulate
    feeds: (rng) => ({ i: E.tensor('int64', [2, 3], Array.from({ length: 6 }, () => randomInt(rng, -3, 2))) }),
    build: (g, rng) => E.gather(g.input('x', F64, [3, 3, 3]), g.input('i', 'int64', [2, 3]), randomInt(rng, 0, 2)),
  },
  {
    name: 'ScatterND add', dtype: F64,
    feeds: () => ({ i: E.tensor('int64', [3, 1], [1, 3, 1]) }),
    build: (g) => E.scatterNDAdd(g.input('d', F64, [4, 2]), g.input('i', 'int64', [3, 1]), g.input('u', F64, [3, 2])),
  },
  {
    name: 'GatherND', dtype: F64,
    feeds: () => ({ i: E.tensor('int64', [3, 2], [0, 1, 2, 0, 0, 1]) }),
    build: (g) => E.gatherND(g.input('x', F64, [3, 2, 2]), g.input('i', 'int64', [3, 2])),
  },
  ...(['ReduceSum', 'ReduceMean', 'ReduceMax'] as const).map((op): GradCase => ({
    name: op, dtype: F64,
    build: (g, rng) => {
      const f = op === 'ReduceSum' ? E.reduceSum : op === 'ReduceMean' ? E.reduceMean : E.reduceMax;
      const axes = pick(rng, [undefined, [0], [1, 2], [-1]]);
      return f(g.input('x', F64, [2, 3, 4]), axes, rng() < 0.5);
    },
  })),
  { name: 'Softmax', dtype: F64, build: (g, rng) => E.softmax(g.input('x', F64, [2, 3, 4]), randomInt(rng, -3, 2)) },
  { name: 'LogSoftmax', dtype: F64, build: (g, rng) => E.logSoftmax(g.input('x', F64, [2, 3, 4]), randomInt(rng, -3, 2)) },
  {
    name: 'LayerNormalization', dtype: F32, sample: { s: positive },
    build: (g, rng) => {
      const axis = pick(rng, [-1, -2]);
      const norm = axis === -1 ? [5] : [4, 5];
      const b = rng() < 0.5 ? g.input('b', F32, norm) : undefined;
      return E.layerNorm(g.input('x', F32, [3, 4, 5]), g.input('s', F32, norm), b, { axis });
    },
  },
];

const worst = new Map<string, number>();

describe('VJP rules match central finite differences', () => {
  afterAll(() => {
    if (process.env.HDB_GRADCHECK_REPORT) console.log(JSON.stringify(Object.fromEntries(worst), null, 1));
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    for (const seed of c.seeds ?? SEEDS) {
      const report = await gradCheck(c, seed);
      expect(report.failures, `${c.name} seed ${seed}: ${JSON.stringify(report.failures.slice(0, 3))}`).toEqual([]);
      expect(report.checks).toBeGreaterThan(0);
      worst.set(c.name, Math.max(worst.get(c.name) ?? 0, report.worstErrorRatio));
    }
  });

  it('covers every op that has a VJP rule', () => {
    const covered = new Set(CASES.map((c) => c.name.split(' ')[0]));
    const withRule = E.knownOps().filter((op) => E.opDef(op).vjp);
    expect(withRule.filter((op) => !covered.has(op))).toEqual([]);
  });
});
