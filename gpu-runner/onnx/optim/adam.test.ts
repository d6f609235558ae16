import { describe, expect, it } from 'vitest';
import { adam, adamW } from './adam.ts';

/** Textbook Adam in float64 (Kingma & Ba 2015, Algorithm 1), written independently of the implementation under test. */
function referenceAdam(p0: number[], gradients: number[][], lr: number, b1: number, b2: number, eps: number, decoupledDecay = 0) {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  gradients.forEach((g, stepIndex) => {
    const t = stepIndex + 1;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! - lr * decoupledDecay * p[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
      const mHat = m[i]! / (1 - b1 ** t);
      const vHat = v[i]! / (1 - b2 ** t);
      p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return p;
}

describe('adam', () => {
  it('matches hand-computed values for two steps on one scalar', () => {
    const opt = adam();
    const params = { w: new Float32Array([1]) };
    const state = opt.init(params);
    opt.update(params, { w: new Float32Array([0.5]) }, state, 0.1);
    // Step 1: m̂ = 0.5, v̂ = 0.25, so the step is lr·0.5/(0.5 + 1e-8) ≈ 0.1.
    expect(params.w[0]).toBeCloseTo(0.9, 6);
    expect(state.slots.m!.w![0]).toBeCloseTo(0.05, 7);
    expect(state.slots.v!.w![0]).toBeCloseTo(0.00025, 9);
    opt.update(params, { w: new Float32Array([-0.25]) }, state, 0.1);
    // Step 2: m = 0.02, v = 3.1225e-4, m̂ = 0.02/0.19, v̂ = 3.1225e-4/0.001999 → step 0.026634.
    expect(state.slots.m!.w![0]).toBeCloseTo(0.02, 7);
    expect(state.slots.v!.w![0]).toBeCloseTo(3.1225e-4, 9);
    expect(params.w[0]).toBeCloseTo(0.873366, 5);
    expect(state.step).toBe(2);
  });

  it('matches an independent float64 Adam over several steps and parameters', () => {
    const opt = adam({ beta1: 0.8, beta2: 0.95, eps: 1e-6 });
    const p0 = [0.3, -1.2, 2.5, 0];
    const gradients = [
      [0.1, -0.4, 1.5, 0],
      [-0.2, 0.3, 0.7, 1e-3],
      [0.05, -0.01, -2, 0.5],
      [0.9, 0.2, 0.1, -0.3],
    ];
    const params = { a: new Float32Array(p0.slice(0, 3)), b: new Float32Array(p0.slice(3)) };
    const state = opt.init(params);
    for (const g of gradients) opt.update(params, { a: new Float32Array(g.slice(0, 3)), b: new Float32Array(g.slice(3)) }, state, 0.01);
    const expected = referenceAdam(p0, gradients, 0.01, 0.8, 0.95, 1e-6);
    [...params.a, ...params.b].forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 6));
  });

  it('adds coupled L2 decay to the gradient', () => {
    const opt = adam({ weightDecay: 0.5 });
    const params = { w: new Float32Array([2]) };
    const state = opt.init(params);
    // g + wd·p = -1 + 1 = 0: the first step does not move the parameter.
    opt.update(params, { w: new Float32Array([-1]) }, state, 0.1);
    expect(params.w[0]).toBeCloseTo(2, 7);
  });
});

describe('adamW', () => {
  it('decays weights decoupled from the gradient, before the Adam step', () => {
    const opt = adamW({ weightDecay: 0.1 });
    const params = { w: new Float32Array([2, -3]) };
    const state = opt.init(params);
    opt.update(params, { w: new Float32Array([0, 0]) }, state, 0.5);
    // Zero gradient: only the decay acts, p·(1 − lr·wd) = p·0.95.
    expect(params.w[0]).toBeCloseTo(1.9, 6);
    expect(params.w[1]).toBeCloseTo(-2.85, 6);
  });

  it('matches the float64 reference with decay over several steps', () => {
    const opt = adamW({ weightDecay: 0.05 });
    const p0 = [1, -0.5];
    const gradients = [[0.3, 0.1], [0.2, -0.6], [-0.4, 0.05]];
    const params = { w: new Float32Array(p0) };
    const state = opt.init(params);
    for (const g of gradients) opt.update(params, { w: new Float32Array(g) }, state, 0.02);
    const expected = referenceAdam(p0, gradients, 0.02, 0.9, 0.999, 1e-8, 0.05);
    expect(params.w[0]).toBeCloseTo(expected[0]!, 6);
    expect(params.w[1]).toBeCloseTo(expected[1]!, 6);
  });

  it('defaults to weight decay 0.01 like PyTorch', () => {
    expect(adamW().config.weightDecay).toBe(0.01);
    expect(adam().config.weightDecay).toBe(0);
  });
});

describe('optimizer input checks', () => {
  it('rejects a missing gradient, a length mismatch and a stray gradient by name', () => {
    const opt = adam();
    const params = { w: new Float32Array(2) };
    const state = opt.init(params);
    expect(() => opt.update(params, {}, state, 0.1)).toThrow(/no gradient for parameter "w"/);
    expect(() => opt.update(params, { w: new Float32Array(3) }, state, 0.1)).toThrow(/gradient "w" has 3 elements/);
    expect(() => opt.update(params, { w: new Float32Array(2), x: new Float32Array(1) }, state, 0.1)).toThrow(/"x" has no matching parameter/);
  });

  it('rejects betas outside [0, 1)', () => {
    expect(() => adam({ beta1: 1 })).toThrow(/beta1/);
    expect(() => adamW({ beta2: -0.1 })).toThrow(/beta2/);
  });
});

describe('adamW with emaDecay', () => {
  it('keeps the average of the parameters with diffusers EMAModel decay min(d, (1 + t) / (10 + t))', () => {
    const opt = adamW({ weightDecay: 0.01, emaDecay: 0.5 });
    expect(opt.slotNames).toEqual(['m', 'v', 'ema']);
    const params = { w: new Float32Array([1, -2]) };
    const state = opt.init(params);
    expect([...state.slots.ema!.w!]).toEqual([1, -2]);
    const plain = adamW({ weightDecay: 0.01 });
    const plainParams = { w: new Float32Array([1, -2]) };
    const plainState = plain.init(plainParams);
    let average = [1, -2];
    for (const [t, g] of [[1, [0.5, 0.1]], [2, [-0.3, 0.2]], [3, [0.1, -0.4]]] as const) {
      opt.update(params, { w: new Float32Array(g) }, state, 0.1);
      plain.update(plainParams, { w: new Float32Array(g) }, plainState, 0.1);
      // The average never changes the update itself.
      expect([...params.w]).toEqual([...plainParams.w]);
      const decay = Math.min(0.5, (1 + t) / (10 + t));
      average = average.map((a, i) => decay * a + (1 - decay) * params.w[i]!);
      expect(state.slots.ema!.w![0]).toBeCloseTo(average[0]!, 6);
      expect(state.slots.ema!.w![1]).toBeCloseTo(average[1]!, 6);
    }
    // Without emaDecay the resolved config is unchanged (old checkpoints still resume).
    expect('emaDecay' in plain.config).toBe(false);
    expect(() => adamW({ emaDecay: 1 })).toThrow(/emaDecay must be in \[0, 1\)/);
  });
});
