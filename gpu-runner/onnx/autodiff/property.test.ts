import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as E from '../index.ts';
import { gradCheck, gradCheckGraphs } from '../testing/gradcheck.ts';

// Randomly composed float64 graphs over (2, 3) values: every step applies one building block to earlier values
// (so values fan out freely); the whole graph's gradient must match finite differences.
type Block = (a: E.Value, b: E.Value) => E.Value;
const BLOCKS: readonly [string, Block][] = [
  ['add', (a, b) => E.add(a, b)],
  ['sub', (a, b) => E.sub(a, b)],
  ['mul', (a, b) => E.mul(a, b)],
  ['safe div', (a, b) => E.div(a, E.add(E.exp(b), 1))],
  ['tanh', (a) => E.tanh(a)],
  ['sigmoid', (a) => E.sigmoid(a)],
  ['sin', (a) => E.sin(a)],
  ['softmax rows', (a) => E.softmax(a, 1)],
  ['softmax cols', (a) => E.softmax(a, 0)],
  ['center', (a) => E.sub(a, E.reduceMean(a, [1], true))],
  ['scale by col max', (a, b) => E.mul(a, E.reduceMax(b, [0], true))],
  ['a·bᵀ·a', (a, b) => E.matmul(E.matmul(a, E.transpose(b, [1, 0])), a)],
  ['concat+slice', (a, b) => E.slice(E.concat([a, b], 1), [1], [4], [1])],
  ['gather rows', (a) => E.gather(a, a.graph.int64s([1, 1]), 0)],
  ['where', (a, b) => E.where(E.greater(a, b), a, E.mul(b, 0.5))],
  ['row bias', (a, b) => E.add(a, E.reduceSum(b, [0]))],
];

const step = fc.record({ block: fc.integer({ min: 0, max: BLOCKS.length - 1 }), a: fc.nat(), b: fc.nat() });
const program = fc.record({ inputs: fc.integer({ min: 1, max: 3 }), steps: fc.array(step, { minLength: 1, maxLength: 6 }), seed: fc.integer({ min: 1, max: 1_000_000 }) });

type Program = { inputs: number; steps: { block: number; a: number; b: number }[]; seed: number };

function build(p: Program) {
  return (g: E.Graph): E.Value[] => {
    const pool: E.Value[] = Array.from({ length: p.inputs }, (_, i) => g.input(`x${i}`, 'float64', [2, 3]));
    const used = new Set<E.Value>();
    for (const s of p.steps) {
      const a = pool[s.a % pool.length]!;
      const b = pool[s.b % pool.length]!;
      used.add(a).add(b);
      pool.push(BLOCKS[s.block]![1](a, b));
    }
    return pool.slice(p.inputs).filter((v) => !used.has(v));
  };
}

describe('autodiff on randomly composed graphs', () => {
  it('matches finite differences', async () => {
    await fc.assert(
      fc.asyncProperty(program, async (p) => {
        const report = await gradCheck({ name: 'random', dtype: 'float64', build: build(p) }, p.seed);
        expect(report.failures, JSON.stringify(report.failures.slice(0, 2))).toEqual([]);
      }),
      { numRuns: 40, seed: 20261126 },
    );
  });

  it('serializes forward and gradient graphs losslessly', () => {
    fc.assert(
      fc.property(program, (p) => {
        const { forward, backward } = gradCheckGraphs({ name: 'random', dtype: 'float64', build: build(p) }, p.seed);
        for (const g of [forward, backward]) {
          const bytes = E.serializeModel(g);
          expect(E.serializeModel(E.readModel(bytes))).toEqual(bytes);
        }
      }),
      { numRuns: 40, seed: 20261127 },
    );
  });
});
