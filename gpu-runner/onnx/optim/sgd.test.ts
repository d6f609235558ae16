import { describe, expect, it } from 'vitest';
import { sgd } from './sgd.ts';

describe('sgd', () => {
  it('plain SGD steps against the gradient', () => {
    const opt = sgd();
    const params = { w: new Float32Array([1, 2]) };
    const state = opt.init(params);
    opt.update(params, { w: new Float32Array([0.5, -1]) }, state, 0.1);
    expect([...params.w]).toEqual([Math.fround(0.95), Math.fround(2.1)]);
    expect(state.slots).toEqual({});
  });

  it('momentum: buffer starts at the first gradient, then b ← μb + g (hand-computed)', () => {
    const opt = sgd({ momentum: 0.9 });
    const params = { w: new Float32Array([1]) };
    const state = opt.init(params);
    opt.update(params, { w: new Float32Array([1]) }, state, 0.1); // b = 1, p = 0.9
    opt.update(params, { w: new Float32Array([1]) }, state, 0.1); // b = 1.9, p = 0.71
    opt.update(params, { w: new Float32Array([-2]) }, state, 0.1); // b = -0.29, p = 0.739
    expect(state.slots.momentum!.w![0]).toBeCloseTo(-0.29, 6);
    expect(params.w[0]).toBeCloseTo(0.739, 6);
  });

  it('nesterov steps along g + μb (hand-computed)', () => {
    const opt = sgd({ momentum: 0.5, nesterov: true });
    const params = { w: new Float32Array([0]) };
    const state = opt.init(params);
    opt.update(params, { w: new Float32Array([2]) }, state, 1); // b = 2, d = 2 + 1 = 3
    expect(params.w[0]).toBeCloseTo(-3, 6);
    opt.update(params, { w: new Float32Array([2]) }, state, 1); // b = 3, d = 2 + 1.5 = 3.5
    expect(params.w[0]).toBeCloseTo(-6.5, 6);
  });

  it('weight decay adds wd·p to the gradient', () => {
    const opt = sgd({ weightDecay: 0.1 });
    const params = { w: new Float32Array([10]) };
    const state = opt.init(params);
    opt.update(params, { w: new Float32Array([0]) }, state, 0.5); // d = 1, p = 9.5
    expect(params.w[0]).toBeCloseTo(9.5, 6);
  });

  it('rejects nesterov without momentum', () => {
    expect(() => sgd({ nesterov: true })).toThrow(/nesterov needs momentum/);
  });
});
