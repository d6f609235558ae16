import { describe, expect, it } from 'vitest';
import { constantSchedule, cosineSchedule, linearWarmupSchedule } from './schedule.ts';

describe('learning-rate schedules', () => {
  it('constant returns the same value at every step', () => {
    const lr = constantSchedule(3e-4);
    expect([0, 1, 1000].map(lr)).toEqual([3e-4, 3e-4, 3e-4]);
  });

  it('linear warm-up ramps from 0 to lr over warmupSteps', () => {
    const lr = linearWarmupSchedule(1, 4);
    expect([0, 1, 2, 3, 4, 100].map(lr)).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
  });

  it('cosine warms up, passes half the peak midway through decay, and reaches the floor', () => {
    const lr = cosineSchedule({ lr: 1, totalSteps: 12, warmupSteps: 2, minLr: 0.1 });
    expect(lr(0)).toBe(0);
    expect(lr(1)).toBe(0.5);
    expect(lr(2)).toBe(1);
    expect(lr(7)).toBeCloseTo(0.55, 12); // progress 1/2: 0.1 + 0.9·0.5
    expect(lr(12)).toBeCloseTo(0.1, 12);
    expect(lr(50)).toBeCloseTo(0.1, 12);
    // 8 decay steps: step 4 is progress 1/4, so 0.5·(1 + cos(π/4)) of the peak.
    const quarter = cosineSchedule({ lr: 1, totalSteps: 10, warmupSteps: 2 });
    expect(quarter(4)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2), 12);
  });

  it('is a pure function of the step', () => {
    const lr = cosineSchedule({ lr: 2, totalSteps: 10 });
    const first = [5, 3, 5, 9].map(lr);
    expect(first[0]).toBe(first[2]);
    expect(lr(0)).toBe(2);
  });

  it('rejects bad steps and configurations', () => {
    expect(() => constantSchedule(1)(-1)).toThrow(/step must be an integer/);
    expect(() => cosineSchedule({ lr: 1, totalSteps: 5, warmupSteps: 6 })).toThrow(/warmupSteps/);
    expect(() => cosineSchedule({ lr: 1, totalSteps: 5, minLr: 2 })).toThrow(/minLr/);
  });
});
