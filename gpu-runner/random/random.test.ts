import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  deterministicLog,
  fillGaussianFloat32,
  fillGaussianFloat64,
  fnv1a64,
  GaussianSampler,
  namedRng,
  Pcg32,
  streamIdFromName,
  u64ToBigInt,
  uniform24,
  uniform53,
} from './index.ts';

// Golden values written by reference_impl.py (plain Python ints and floats): the TypeScript must match bit for bit.
const GoldenSchema = z.object({
  pcg32_demo_42_54: z.array(z.number()),
  fnv1a64: z.record(z.string(), z.string()),
  log: z.array(z.tuple([z.number(), z.number()])),
  streams: z.array(
    z.object({
      seed: z.number(),
      name: z.string(),
      uint32: z.array(z.number()),
      uniform53: z.array(z.number()),
      uniform24: z.array(z.number()),
      below1000: z.array(z.number()),
      gaussian64_first: z.array(z.number()),
      gaussian32_first: z.array(z.number()),
      gaussian64_count: z.number(),
      gaussian64_sum: z.number(),
      gaussian64_sumsq: z.number(),
      gaussian64_last: z.number(),
    }),
  ),
});
const golden = GoldenSchema.parse(JSON.parse(readFileSync(new URL('./golden-values.json', import.meta.url), 'utf8')));

function exactSum(values: ArrayLike<number>): number {
  // Neumaier summation is enough to compare with Python's math.fsum at 1e-12 relative.
  let sum = 0;
  let compensation = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const t = sum + v;
    compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  return sum + compensation;
}

describe('PCG32', () => {
  it('reproduces the reference pcg32-demo output for initstate 42, initseq 54', () => {
    // pcg_basic's demo prints 0xa15c02b7 0x7b47f409 0xba1d3330 0x83d2f293 0xbfa4784b 0xcbed606e.
    const rng = new Pcg32(42, 54);
    const out = Array.from({ length: 6 }, () => rng.nextUint32());
    expect(out).toEqual([0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
    expect(out).toEqual(golden.pcg32_demo_42_54);
  });

  it('accepts 64-bit seeds as bigint and rejects bad ones clearly', () => {
    const big = new Pcg32((1n << 64n) - 1n, (1n << 63n) + 5n);
    expect(big.nextUint32()).toBeGreaterThanOrEqual(0);
    expect(() => new Pcg32(-1)).toThrow(/non-negative/);
    expect(() => new Pcg32(1.5)).toThrow(/safe integer/);
    expect(() => new Pcg32(1n << 64n)).toThrow(/64 unsigned bits/);
    expect(() => new Pcg32(1).nextBelow(0)).toThrow(/bound/);
  });

  it('matches the Python reference on every stream (uint32, bounded)', () => {
    for (const s of golden.streams) {
      const rng = namedRng(s.seed, s.name);
      expect(Array.from({ length: 4 }, () => rng.nextUint32())).toEqual(s.uint32);
      const bounded = namedRng(s.seed, s.name);
      expect(Array.from({ length: 4 }, () => bounded.nextBelow(1000))).toEqual(s.below1000);
    }
  });

  it('gives different streams for different names under the same seed', () => {
    const a = namedRng(7, 'noise');
    const b = namedRng(7, 'timesteps');
    expect(a.nextUint32()).not.toEqual(b.nextUint32());
    expect(a.snapshot().inc).not.toEqual(b.snapshot().inc);
  });
});

describe('FNV-1a 64', () => {
  it('matches the published test vectors and the Python reference', () => {
    expect(u64ToBigInt(fnv1a64(''))).toBe(0xcbf29ce484222325n);
    expect(u64ToBigInt(fnv1a64('a'))).toBe(0xaf63dc4c8601ec8cn);
    expect(u64ToBigInt(fnv1a64('foobar'))).toBe(0x85944171f73967e8n);
    for (const [text, value] of Object.entries(golden.fnv1a64)) expect(streamIdFromName(text)).toBe(BigInt(value));
  });
});

describe('uniform floats', () => {
  it('match the Python reference bit for bit and stay in [0, 1)', () => {
    for (const s of golden.streams) {
      const r53 = namedRng(s.seed, s.name);
      expect(Array.from({ length: 4 }, () => uniform53(r53))).toEqual(s.uniform53);
      const r24 = namedRng(s.seed, s.name);
      const u24 = Array.from({ length: 4 }, () => uniform24(r24));
      expect(u24).toEqual(s.uniform24);
      for (const u of u24) expect(Math.fround(u)).toBe(u);
    }
  });
});

describe('deterministicLog', () => {
  it('matches the Python reference bit for bit, including subnormals', () => {
    for (const [x, ln] of golden.log) expect(deterministicLog(x)).toBe(ln);
  });

  it('is within a few ulp of Math.log over (0, 1)', () => {
    const rng = new Pcg32(99, 1);
    for (let i = 0; i < 20_000; i++) {
      const x = uniform53(rng) || 0.5;
      const expected = Math.log(x);
      expect(Math.abs(deterministicLog(x) - expected)).toBeLessThanOrEqual(4 * Number.EPSILON * Math.max(1, Math.abs(expected)));
    }
  });

  it('rejects non-positive or non-finite input', () => {
    expect(() => deterministicLog(0)).toThrow(/positive finite/);
    expect(() => deterministicLog(-1)).toThrow(/positive finite/);
    expect(() => deterministicLog(Number.POSITIVE_INFINITY)).toThrow(/positive finite/);
  });
});

describe('Gaussian (Marsaglia polar)', () => {
  it('matches the Python reference bit for bit (first values, sums over 1001 values, last value)', () => {
    for (const s of golden.streams) {
      const values = fillGaussianFloat64(namedRng(s.seed, s.name), s.gaussian64_count);
      expect(Array.from(values.subarray(0, 6))).toEqual(s.gaussian64_first);
      expect(values[values.length - 1]).toBe(s.gaussian64_last);
      expect(exactSum(values)).toBeCloseTo(s.gaussian64_sum, 12);
      expect(exactSum(values.map((v) => v * v))).toBeCloseTo(s.gaussian64_sumsq, 10);
      const f32 = fillGaussianFloat32(namedRng(s.seed, s.name), 6);
      expect(Array.from(f32)).toEqual(s.gaussian32_first);
    }
  });

  it('the streaming sampler yields the same sequence as a fill', () => {
    const sampler = new GaussianSampler(namedRng(5, 'x'));
    const streamed = Array.from({ length: 9 }, () => sampler.next());
    expect(streamed).toEqual(Array.from(fillGaussianFloat64(namedRng(5, 'x'), 9)));
  });

  it('has mean ≈ 0 and variance ≈ 1 over 200k samples', () => {
    const n = 200_000;
    const values = fillGaussianFloat64(namedRng(2024, 'moments'), n);
    const mean = exactSum(values) / n;
    const variance = exactSum(values.map((v) => (v - mean) ** 2)) / (n - 1);
    // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032; 5σ bounds.
    expect(Math.abs(mean)).toBeLessThan(0.012);
    expect(Math.abs(variance - 1)).toBeLessThan(0.016);
  });
});
