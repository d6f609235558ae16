import { describe, expect, it } from 'vitest';
import { mul, stopGradient } from '../index.ts';
import { gradCheck } from './gradcheck.ts';
import { referenceGradCheck } from './reference-gradcheck.ts';
import { map } from './reference.ts';

// The checkers must be able to fail: x·stopGradient(x) has true derivative 2x but its gradient graph yields x.
describe('gradCheck', () => {
  it.each(['float64', 'float32'] as const)('rejects a wrong gradient (%s)', async (dtype) => {
    const report = await gradCheck({ name: 'wrong', dtype, build: (g) => { const x = g.input('x', dtype, [3, 2]); return mul(x, stopGradient(x)); } }, 7);
    expect(report.failures.length).toBeGreaterThan(0);
  });
  it.each(['float64', 'float32'] as const)('accepts the right one (%s)', async (dtype) => {
    const report = await gradCheck({ name: 'right', dtype, build: (g) => { const x = g.input('x', dtype, [3, 2]); return mul(x, x); } }, 7);
    expect(report.failures).toEqual([]);
  });
});

describe('referenceGradCheck', () => {
  const square = (x: Parameters<typeof map>[0]) => map(x, (v) => v * v);
  it('rejects a wrong gradient and accepts the right one', async () => {
    const wrong = await referenceGradCheck({ name: 'wrong', inputs: { x: [3, 2] }, build: (_, v) => mul(v.x!, stopGradient(v.x!)), reference: (t) => square(t.x!) }, 7);
    expect(wrong.failures.length).toBeGreaterThan(0);
    const right = await referenceGradCheck({ name: 'right', inputs: { x: [3, 2] }, build: (_, v) => mul(v.x!, v.x!), reference: (t) => square(t.x!) }, 7);
    expect(right.failures).toEqual([]);
  });
});
