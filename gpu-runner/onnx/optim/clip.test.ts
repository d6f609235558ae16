import { describe, expect, it } from 'vitest';
import { clipByGlobalNorm, globalNorm, sumOfSquares } from './clip.ts';

describe('gradient clipping by global norm', () => {
  it('computes the norm over all tensors together', () => {
    expect(globalNorm({ a: new Float32Array([3]), b: new Float32Array([0, 4]) })).toBe(5);
  });

  it('sums squares over whole quads and the tail alike, within float64 round-off of a plain sum', () => {
    for (const length of [0, 1, 3, 4, 5, 8, 1001]) {
      const g = Float32Array.from({ length }, (_, i) => Math.sin(i * 1.7) * 10 ** ((i % 7) - 3));
      let plain = 0;
      for (const x of g) plain += x * x;
      expect(Math.abs(sumOfSquares(g) - plain)).toBeLessThanOrEqual(plain * 1e-14);
    }
    // exactly representable squares: the order cannot matter
    expect(sumOfSquares(Float32Array.of(1, 2, 3, 4, 5, 6))).toBe(91);
  });

  it('scales every tensor by maxNorm / norm when the norm is too large', () => {
    const grads = { a: new Float32Array([3]), b: new Float32Array([0, 4]) };
    const norm = clipByGlobalNorm(grads, 1);
    expect(norm).toBe(5);
    expect(grads.a[0]).toBeCloseTo(0.6, 6);
    expect(grads.b[1]).toBeCloseTo(0.8, 6);
    expect(globalNorm(grads)).toBeCloseTo(1, 5);
  });

  it('leaves gradients under the limit untouched', () => {
    const grads = { a: new Float32Array([0.3, 0.4]) };
    clipByGlobalNorm(grads, 1);
    expect([...grads.a]).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });

  it('rejects a non-positive limit and a non-finite norm', () => {
    expect(() => clipByGlobalNorm({ a: new Float32Array(1) }, 0)).toThrow(/maxNorm/);
    expect(() => clipByGlobalNorm({ a: new Float32Array([Number.NaN]) }, 1)).toThrow(/norm is NaN/);
  });
});
