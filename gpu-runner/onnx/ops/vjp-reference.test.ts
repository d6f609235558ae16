import { afterAll, describe, expect, it } from 'vitest';
import * as E from '../index.ts';
import * as R from '../testing/reference.ts';
import { referenceGradCheck, type ReferenceGradCase } from '../testing/reference-gradcheck.ts';
import { uniform } from '../testing/random.ts';

// The rules of ops with float32-only kernels, checked per coordinate against float64 finite differences of the JS
// reference forward (complements the directional checks in vjp.test.ts).
const convCase = (name: string, x: number[], w: number[], p: R.Conv2dParams, bias: boolean): ReferenceGradCase => ({
  name,
  inputs: { x, w, ...(bias ? { b: [w[0]!] } : {}) },
  build: (_, v) => E.conv(v.x!, v.w!, v.b, { strides: p.stride, pads: p.pads, dilations: p.dilation, group: p.group }),
  reference: (t) => R.conv2d(t.x!, t.w!, t.b, p),
});
const convTCase = (name: string, x: number[], w: number[], p: R.Conv2dParams & { outputPadding: [number, number] }): ReferenceGradCase => ({
  name,
  inputs: { x, w, b: [w[1]! * p.group] },
  build: (_, v) => E.convTranspose(v.x!, v.w!, v.b, { strides: p.stride, pads: p.pads, dilations: p.dilation, group: p.group, outputPadding: p.outputPadding }),
  reference: (t) => R.convTranspose2d(t.x!, t.w!, t.b, p),
});
const wide = (r: () => number) => uniform(r, -3, 3);

const CASES: ReferenceGradCase[] = [
  convCase('Conv 3×3 pad 1 (SD resnet)', [2, 3, 5, 5], [4, 3, 3, 3], { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1 }, true),
  convCase('Conv stride 2 pad 1 (SD downsample)', [1, 2, 7, 6], [3, 2, 3, 3], { stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1 }, true),
  convCase('Conv 1×1', [1, 4, 3, 3], [2, 4, 1, 1], { stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], group: 1 }, false),
  convCase('Conv 3×3 pad 1, 1–8 output channels per position (dX by flipped maps)', [1, 2, 2, 2], [5, 2, 3, 3], { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1 }, true),
  convCase('Conv 3×3 pad 1, over 8 output channels per position (dX by ConvTranspose)', [1, 1, 2, 2], [40, 1, 3, 3], { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1 }, false),
  convCase('Conv 1×1, more output channels than positions (dX by ConvTranspose)', [1, 3, 2, 2], [5, 3, 1, 1], { stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], group: 1 }, false),
  convCase('Conv groups 2 dilation 2 asymmetric pads', [1, 4, 6, 7], [4, 2, 3, 2], { stride: [1, 2], pads: [2, 0, 1, 1], dilation: [2, 1], group: 2 }, true),
  convTCase('ConvTranspose stride 2 output_padding 1', [1, 3, 3, 4], [3, 2, 3, 3], { stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1, outputPadding: [1, 1] }),
  convTCase('ConvTranspose groups 2 dilation 2', [1, 4, 3, 3], [4, 1, 2, 2], { stride: [1, 1], pads: [0, 1, 0, 0], dilation: [2, 2], group: 2, outputPadding: [0, 0] }),
  { name: 'Resize nearest ×2', inputs: { x: [1, 2, 3, 4] }, build: (_, v) => E.upsampleNearest(v.x!), reference: (t) => R.upsampleNearest(t.x!, 2) },
  {
    name: 'LayerNormalization', inputs: { x: [3, 6], s: [6], b: [6] },
    build: (_, v) => E.layerNorm(v.x!, v.s!, v.b),
    reference: (t) => R.zip(R.zip(R.lanes(t.x!, -1, R.normalizeLane(E.LAYER_NORM_EPSILON)), t.s!, (p, q) => p * q), t.b!, (p, q) => p + q),
  },
  { name: 'Erf', inputs: { x: [2, 8] }, sample: { x: wide }, build: (_, v) => E.erf(v.x!), reference: (t) => R.map(t.x!, R.erf) },
  { name: 'Gelu exact', inputs: { x: [2, 8] }, sample: { x: wide }, build: (_, v) => E.gelu(v.x!), reference: (t) => R.map(t.x!, (x) => 0.5 * x * (1 + R.erf(x / Math.SQRT2))) },
  {
    name: 'Gelu tanh', inputs: { x: [2, 8] }, sample: { x: wide }, build: (_, v) => E.gelu(v.x!, 'tanh'),
    reference: (t) => R.map(t.x!, (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))),
  },
];

const worst = new Map<string, number>();
afterAll(() => {
  if (process.env.HDB_GRADCHECK_REPORT) console.log(JSON.stringify(Object.fromEntries(worst), null, 1));
});

describe('float32-kernel VJP rules against float64 reference finite differences', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    for (const seed of [1, 2, 3]) {
      const report = await referenceGradCheck(c, seed);
      expect(report.failures.slice(0, 3), `seed ${seed}`).toEqual([]);
      worst.set(c.name, Math.max(worst.get(c.name) ?? 0, report.worstRelativeError));
    }
  });
});
