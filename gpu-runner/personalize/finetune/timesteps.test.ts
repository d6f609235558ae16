import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { namedRng } from '../../random/index.ts';
import { timestepOfStep, UNIFORM_TIMESTEPS } from './timesteps.ts';

const T = 1000;

describe('finetune timesteps', () => {
  it('uniform draws are the named stream the optimizers have always used, so the baselines draw what they drew before', () => {
    for (let i = 0; i < 50; i++) {
      expect(timestepOfStep(UNIFORM_TIMESTEPS, T, 7, 'finetune', i)).toBe(namedRng(7, `finetune/timestep/${i}`).nextBelow(T));
    }
  });

  it('stratified draws stay below maxFraction · T, repeat for a seed and move with it', () => {
    const schedule = { kind: 'stratified', maxFraction: 0.6 } as const;
    const draws = (seed: number) => Array.from({ length: 40 }, (_, i) => timestepOfStep(schedule, T, seed, 'finetune', i));
    for (const t of draws(3)) expect(t >= 0 && t < 600 && Number.isInteger(t)).toBe(true);
    expect(draws(3)).toEqual(draws(3));
    expect(draws(4)).not.toEqual(draws(3));
    expect(timestepOfStep({ kind: 'stratified', maxFraction: 1 }, T, 3, 'finetune', 5)).toBeLessThan(T);
  });

  it('spreads any number of steps evenly: no gap between neighbouring timesteps wider than 3/n of the range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 5, max: 300 }), fc.nat(1000), fc.double({ min: 0.1, max: 1, noNaN: true }), (n, seed, maxFraction) => {
        const top = maxFraction * T;
        const sorted = Array.from({ length: n }, (_, i) => timestepOfStep({ kind: 'stratified', maxFraction }, T, seed, 's', i)).sort((a, b) => a - b);
        const gaps = sorted.slice(1).map((t, i) => t - sorted[i]!);
        gaps.push(sorted[0]! + top - sorted.at(-1)!); // around the wrap of frac()
        expect(Math.max(...gaps)).toBeLessThanOrEqual((3 * top) / n + 1);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a fraction outside (0, 1]', () => {
    for (const maxFraction of [0, -0.5, 1.5, Number.NaN]) {
      expect(() => timestepOfStep({ kind: 'stratified', maxFraction }, T, 0, 's', 0)).toThrow(/maxFraction must be in \(0, 1\]/);
    }
  });
});
