import { describe, expect, it } from 'vitest';
import * as E from '../index.ts';
import * as R from '../testing/reference.ts';
import { runGraph } from '../testing/ort.ts';
import { randomTensor, seededRng, uniform, type Rng } from '../testing/random.ts';

// Each op's forward as emitted (attributes, shape rule) against a plain-JS float64 reference.
/** float32 kernels vs float64 reference: a few float32 ulps of accumulated rounding. */
const FLOAT32_TOLERANCE = 2e-5;
const FLOAT64_TOLERANCE = 1e-12;

type Inputs = Record<string, { dims: number[]; dtype?: E.DType; sample?: (r: Rng) => number; values?: number[] }>;

interface ForwardCase {
  name: string;
  dtype: 'float32' | 'float64';
  inputs: Inputs;
  build: (g: E.Graph, v: Record<string, E.Value>) => E.Value;
  reference: (x: Record<string, R.Nd>) => R.Nd;
  /** Expected output shape (checks the shape rule against what onnxruntime produced). */
}

async function runCase(c: ForwardCase, seed: number): Promise<string | undefined> {
  const rng = seededRng(seed);
  const g = new E.Graph(c.name.replace(/\W+/g, '_'));
  const values: Record<string, E.Value> = {};
  const feeds: Record<string, E.HostTensor> = {};
  const nds: Record<string, R.Nd> = {};
  for (const [name, spec] of Object.entries(c.inputs)) {
    const dtype = spec.dtype ?? c.dtype;
    values[name] = g.input(name, dtype, spec.dims);
    feeds[name] = spec.values ? E.tensor(dtype, spec.dims, spec.values) : randomTensor(dtype, spec.dims, rng, spec.sample);
    nds[name] = R.nd(spec.dims, Array.from(feeds[name]!.data as ArrayLike<number | bigint>, Number));
  }
  const out = c.build(g, values);
  g.output(out, 'out');
  const actual = (await runGraph(g, feeds)).out!;
  const expected = c.reference(nds);
  if (JSON.stringify(actual.dims) !== JSON.stringify(expected.dims)) return `dims ${JSON.stringify(actual.dims)} vs reference ${JSON.stringify(expected.dims)}`;
  if (JSON.stringify(out.staticShape) !== JSON.stringify(expected.dims)) return `inferred ${out.toString()} vs reference ${JSON.stringify(expected.dims)}`;
  return R.expectClose(Array.from(actual.data as ArrayLike<number | bigint>, Number), expected.data, c.dtype === 'float32' ? FLOAT32_TOLERANCE : FLOAT64_TOLERANCE);
}

const positive = (r: Rng) => uniform(r, 0.2, 2);
const sigm = (v: number) => 1 / (1 + Math.exp(-v));
const unary = (name: string, f: (x: E.Value) => E.Value, ref: (v: number) => number, dtype: 'float32' | 'float64' = 'float64', sample?: (r: Rng) => number): ForwardCase => ({
  name, dtype, inputs: { x: { dims: [2, 3, 4], ...(sample ? { sample } : {}) } }, build: (_, v) => f(v.x!), reference: (x) => R.map(x.x!, ref),
});
const binary = (name: string, f: (a: E.Value, b: E.Value) => E.Value, ref: (a: number, b: number) => number, sample?: (r: Rng) => number): ForwardCase => ({
  name, dtype: 'float64', inputs: { a: { dims: [2, 1, 4] }, b: { dims: [3, 1], ...(sample ? { sample } : {}) } }, build: (_, v) => f(v.a!, v.b!), reference: (x) => R.zip(x.a!, x.b!, ref),
});
const conv = (name: string, dims: { x: number[]; w: number[] }, p: R.Conv2dParams, bias: boolean): ForwardCase => ({
  name, dtype: 'float32', inputs: { x: { dims: dims.x }, w: { dims: dims.w }, ...(bias ? { b: { dims: [dims.w[0]!] } } : {}) },
  build: (_, v) => E.conv(v.x!, v.w!, v.b, { strides: p.stride, pads: p.pads, dilations: p.dilation, group: p.group }),
  reference: (x) => R.conv2d(x.x!, x.w!, x.b, p),
});
const convT = (name: string, dims: { x: number[]; w: number[] }, p: R.Conv2dParams & { outputPadding: [number, number] }): ForwardCase => ({
  name, dtype: 'float32', inputs: { x: { dims: dims.x }, w: { dims: dims.w }, b: { dims: [dims.w[1]! * p.group] } },
  build: (_, v) => E.convTranspose(v.x!, v.w!, v.b, { strides: p.stride, pads: p.pads, dilations: p.dilation, group: p.group, outputPadding: p.outputPadding }),
  reference: (x) => R.convTranspose2d(x.x!, x.w!, x.b, p),
});
const sliceRef = (x: R.Nd, rows: number[], cols: number[]) => R.nd([rows.length, cols.length], rows.flatMap((r) => cols.map((c) => x.data[r * x.dims[1]! + c]!)));

const CASES: ForwardCase[] = [
  unary('Neg', E.neg, (v) => -v),
  unary('Sqrt', E.sqrt, Math.sqrt, 'float64', positive),
  unary('Exp', E.exp, Math.exp),
  unary('Log', E.log, Math.log, 'float64', positive),
  unary('Abs', E.abs, Math.abs),
  unary('Sign', E.sign, Math.sign),
  unary('Reciprocal', E.reciprocal, (v) => 1 / v, 'float64', positive),
  unary('Sigmoid', E.sigmoid, sigm),
  unary('Tanh', E.tanh, Math.tanh),
  unary('Sin', E.sin, Math.sin),
  unary('Cos', E.cos, Math.cos),
  unary('Relu', E.relu, (v) => Math.max(v, 0)),
  unary('Identity', E.identity, (v) => v),
  unary('Clip', (x) => E.clip(x, -0.25, 0.5), (v) => Math.min(Math.max(v, -0.25), 0.5)),
  unary('Clip min only', (x) => E.clip(x, 0), (v) => Math.max(v, 0)),
  binary('Or/And (as Where)', (a, b) => E.where(E.or(E.greater(a, b), E.and(E.less(a, 0), E.less(b, 0))), a, b), (a, b) => (a > b || (a < 0 && b < 0) ? a : b)),
  unary('Erf', E.erf, R.erf, 'float32', (r) => uniform(r, -3, 3)),
  unary('Gelu exact', (x) => E.gelu(x), (v) => 0.5 * v * (1 + R.erf(v / Math.SQRT2)), 'float32', (r) => uniform(r, -4, 4)),
  unary('Gelu tanh', (x) => E.gelu(x, 'tanh'), (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), 'float32', (r) => uniform(r, -4, 4)),
  // float32: onnxruntime fuses these patterns into com.microsoft kernels that exist for float only
  unary('SiLU', E.silu, (v) => v * sigm(v), 'float32'),
  unary('QuickGELU', E.quickGelu, (v) => v * sigm(1.702 * v), 'float32'),
  unary('Cast float64→float32→float64', (x) => E.cast(E.cast(x, 'float32'), 'float64'), Math.fround),
  unary('stopGradient', E.stopGradient, (v) => v),
  binary('Add', E.add, (a, b) => a + b),
  binary('Sub', E.sub, (a, b) => a - b),
  binary('Mul', E.mul, (a, b) => a * b),
  binary('Div', E.div, (a, b) => a / b, positive),
  { ...binary('Pow', E.pow, (a, b) => a ** b), inputs: { a: { dims: [2, 1, 4], sample: positive }, b: { dims: [3, 1] } } },
  binary('Max', E.max, Math.max),
  binary('Min', E.min, Math.min),
  binary('Greater (as Where)', (a, b) => E.where(E.greater(a, b), a, b), Math.max),
  binary('Less (as Where)', (a, b) => E.where(E.less(a, b), a, b), Math.min),
  binary('Equal (cast)', (a, b) => E.cast(E.equal(a, E.add(b, 0)), 'float64'), (a, b) => Number(a === b)),
  { ...unary('number operand', (a) => E.sub(1, E.mul(a, 3)), (a) => 1 - 3 * a) },
  {
    name: 'MatMul batch broadcast', dtype: 'float64', inputs: { a: { dims: [2, 1, 3, 4] }, b: { dims: [3, 4, 5] } },
    build: (_, v) => E.matmul(v.a!, v.b!), reference: (x) => R.matmul(x.a!, x.b!),
  },
  {
    name: 'Gemm transA transB alpha beta', dtype: 'float64', inputs: { a: { dims: [4, 3] }, b: { dims: [5, 4] }, c: { dims: [5] } },
    build: (_, v) => E.gemm(v.a!, v.b!, v.c, { alpha: 0.5, beta: 2, transA: true, transB: true }),
    reference: (x) => R.zip(R.map(R.matmul(R.transpose(x.a!, [1, 0]), R.transpose(x.b!, [1, 0])), (t) => 0.5 * t), R.map(x.c!, (t) => 2 * t), (p, q) => p + q),
  },
  { ...unary('linear 2-D (Gemm)', (x) => x, (v) => v), inputs: { x: { dims: [3, 4] }, w: { dims: [5, 4] }, b: { dims: [5] } }, build: (_, v) => E.linear(v.x!, v.w!, v.b), reference: (x) => R.zip(R.matmul(x.x!, R.transpose(x.w!, [1, 0])), x.b!, (p, q) => p + q) },
  { ...unary('linear 3-D (MatMul)', (x) => x, (v) => v), inputs: { x: { dims: [2, 3, 4] }, w: { dims: [5, 4] } }, build: (_, v) => E.linear(v.x!, v.w!), reference: (x) => R.matmul(x.x!, R.transpose(x.w!, [1, 0])) },
  conv('Conv 3×3 pad 1', { x: [2, 3, 5, 6], w: [4, 3, 3, 3] }, { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1 }, true),
  conv('Conv stride 2 asymmetric pads', { x: [1, 2, 7, 6], w: [3, 2, 3, 2] }, { stride: [2, 2], pads: [0, 1, 1, 0], dilation: [1, 1], group: 1 }, false),
  conv('Conv groups 2 dilation 2', { x: [1, 4, 7, 7], w: [6, 2, 3, 3] }, { stride: [1, 2], pads: [2, 2, 2, 2], dilation: [2, 2], group: 2 }, true),
  convT('ConvTranspose stride 2 output_padding 1', { x: [1, 3, 4, 3], w: [3, 2, 3, 3] }, { stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1, outputPadding: [1, 1] }),
  convT('ConvTranspose groups 2', { x: [2, 4, 3, 3], w: [4, 1, 2, 2] }, { stride: [1, 1], pads: [0, 0, 0, 0], dilation: [2, 1], group: 2, outputPadding: [0, 0] }),
  { name: 'Resize nearest ×2', dtype: 'float32', inputs: { x: { dims: [1, 2, 3, 4] } }, build: (_, v) => E.upsampleNearest(v.x!), reference: (x) => R.upsampleNearest(x.x!, 2) },
  { name: 'Reshape -1', dtype: 'float64', inputs: { x: { dims: [2, 3, 4] } }, build: (_, v) => E.reshape(v.x!, [-1, 4]), reference: (x) => R.nd([6, 4], x.x!.data) },
  { name: 'Transpose', dtype: 'float64', inputs: { x: { dims: [2, 3, 4] } }, build: (_, v) => E.transpose(v.x!, [2, 0, 1]), reference: (x) => R.transpose(x.x!, [2, 0, 1]) },
  {
    name: 'Concat + Split', dtype: 'float64', inputs: { a: { dims: [2, 3] }, b: { dims: [2, 2] } },
    build: (_, v) => E.split(E.concat([v.a!, v.b!], 1), [4, 1], 1)[1]!, reference: (x) => R.nd([2, 1], [x.b!.data[1]!, x.b!.data[3]!]),
  },
  { name: 'chunk', dtype: 'float64', inputs: { a: { dims: [2, 4] } }, build: (_, v) => E.chunk(v.a!, 2, -1)[1]!, reference: (x) => sliceRef(x.a!, [0, 1], [2, 3]) },
  { name: 'Slice negative start', dtype: 'float64', inputs: { x: { dims: [4, 5] } }, build: (_, v) => E.slice(v.x!, [1, -3], [3, 100], [0, 1]), reference: (x) => sliceRef(x.x!, [1, 2], [2, 3, 4]) },
  { name: 'Slice steps', dtype: 'float64', inputs: { x: { dims: [4, 5] } }, build: (_, v) => E.slice(v.x!, [3, 0], [-100, 5], [0, 1], [-2, 2]), reference: (x) => sliceRef(x.x!, [3, 1], [0, 2, 4]) },
  {
    name: 'Pad', dtype: 'float64', inputs: { x: { dims: [1, 2] } }, build: (_, v) => E.pad(v.x!, [1, 0, 0, 2]),
    reference: (x) => R.nd([2, 4], [0, 0, 0, 0, x.x!.data[0]!, x.x!.data[1]!, 0, 0]),
  },
  {
    name: 'Gather axis 1 negative index', dtype: 'float64', inputs: { x: { dims: [2, 3] }, i: { dims: [2], dtype: 'int64', values: [-1, 0] } },
    build: (_, v) => E.gather(v.x!, v.i!, 1), reference: (x) => sliceRef(x.x!, [0, 1], [2, 0]),
  },
  { name: 'Expand', dtype: 'float64', inputs: { x: { dims: [3, 1] } }, build: (_, v) => E.expand(v.x!, [2, 3, 2]), reference: (x) => R.zip(x.x!, R.nd([2, 3, 2], new Array(12).fill(0)), (a) => a) },
  { name: 'Squeeze/Unsqueeze', dtype: 'float64', inputs: { x: { dims: [3, 1, 2] } }, build: (_, v) => E.unsqueeze(E.squeeze(v.x!, [1]), [0]), reference: (x) => R.nd([1, 3, 2], x.x!.data) },
  { name: 'ConstantOfShape', dtype: 'float64', inputs: { x: { dims: [2] } }, build: (g, v) => E.add(v.x!, E.constantOfShape(g, [3, 2], 1.5, 'float64')), reference: (x) => R.zip(x.x!, R.nd([3, 1], [1.5, 1.5, 1.5]), (a, b) => a + b) },
  {
    name: 'ScatterND add (repeated index)', dtype: 'float64', inputs: { d: { dims: [3, 2] }, i: { dims: [2, 1], dtype: 'int64', values: [2, 2] }, u: { dims: [2, 2] } },
    build: (_, v) => E.scatterNDAdd(v.d!, v.i!, v.u!),
    reference: (x) => R.nd([3, 2], [...x.d!.data.slice(0, 4), x.d!.data[4]! + x.u!.data[0]! + x.u!.data[2]!, x.d!.data[5]! + x.u!.data[1]! + x.u!.data[3]!]),
  },
  {
    name: 'GatherND', dtype: 'float64', inputs: { x: { dims: [2, 3] }, i: { dims: [2, 2], dtype: 'int64', values: [1, 2, 0, 1] } },
    build: (_, v) => E.gatherND(v.x!, v.i!), reference: (x) => R.nd([2], [x.x!.data[5]!, x.x!.data[1]!]),
  },
  { name: 'ReduceSum axes keepdims', dtype: 'float64', inputs: { x: { dims: [2, 3, 4] } }, build: (_, v) => E.reduceSum(v.x!, [0, 2], true), reference: (x) => R.reduce(x.x!, [0, 2], (l) => l.reduce((a, b) => a + b, 0)) },
  { name: 'ReduceMean all', dtype: 'float64', inputs: { x: { dims: [2, 3] } }, build: (_, v) => E.reduceMean(v.x!), reference: (x) => R.nd([], R.reduce(x.x!, [0, 1], (l) => l.reduce((a, b) => a + b, 0) / l.length).data) },
  { name: 'ReduceMax axis -1', dtype: 'float64', inputs: { x: { dims: [2, 3] } }, build: (_, v) => E.reduceMax(v.x!, [-1]), reference: (x) => R.nd([2], R.reduce(x.x!, [1], (l) => Math.max(...l)).data) },
  { name: 'Softmax axis 1', dtype: 'float64', inputs: { x: { dims: [2, 3, 4] } }, build: (_, v) => E.softmax(v.x!, 1), reference: (x) => R.lanes(x.x!, 1, R.softmaxLane) },
  { name: 'LogSoftmax', dtype: 'float64', inputs: { x: { dims: [2, 3] } }, build: (_, v) => E.logSoftmax(v.x!), reference: (x) => R.map(R.lanes(x.x!, -1, R.softmaxLane), Math.log) },
  {
    name: 'LayerNormalization', dtype: 'float32', inputs: { x: { dims: [2, 3, 6] }, s: { dims: [6] }, b: { dims: [6] } },
    build: (_, v) => E.layerNorm(v.x!, v.s!, v.b),
    reference: (x) => R.zip(R.zip(R.lanes(x.x!, -1, R.normalizeLane(E.LAYER_NORM_EPSILON)), x.s!, (p, q) => p * q), x.b!, (p, q) => p + q),
  },
];

describe('op forward against JS references', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    for (const seed of [1, 2]) expect(await runCase(c, seed)).toBeUndefined();
  });
});
