import { describe, expect, it } from 'vitest';
import { adam, adamW, type AdamConfig } from './adam.ts';
import { AdamArena } from './adam-simd.ts';
import { globalNorm } from './clip.ts';
import type { OptimizerState, ParamSet } from './types.ts';

function seeded(seed: number) {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Every remainder mod 4 (the loop takes quads, the rest goes to JS), a single element, one past a 64-byte boundary. */
const LENGTHS: Record<string, number> = { a: 1, b: 2, c: 17, d: 1000, e: 4097, f: 3, g: 7, h: 4 };

function randomSet(random: () => number, scale: number): ParamSet {
  return Object.fromEntries(Object.entries(LENGTHS).map(([k, n]) => [k, Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale)]));
}

const bits = (set: ParamSet) => Object.fromEntries(Object.entries(set).map(([k, a]) => [k, [...new Uint32Array(a.buffer, a.byteOffset, a.length)]]));
const copy = (set: ParamSet): ParamSet => Object.fromEntries(Object.entries(set).map(([k, a]) => [k, a.slice()]));

function compare(makeOptimizer: (c: AdamConfig) => ReturnType<typeof adamW>, config: AdamConfig) {
  const random = seeded(7);
  const optimizer = makeOptimizer(config);
  const params = randomSet(random, 1);
  const state: OptimizerState = optimizer.init(params);
  const arenaState: OptimizerState = { step: 0, slots: Object.fromEntries(Object.entries(state.slots).map(([slot, set]) => [slot, copy(set)])) };
  const arena = AdamArena.create(params, arenaState)!;
  expect(arena).not.toBeNull();
  for (let step = 0; step < 6; step++) {
    // gradients of every magnitude, zeros included
    const grads = randomSet(random, [1, 1e-3, 1e3, 1e-20, 0, 5][step]!);
    for (const [k, g] of Object.entries(grads)) arena.grads[k]!.set(g);
    const lr = [1e-3, 1e-2, 3e-4, 1e-3, 1e-1, 1e-5][step]!;
    const sum = arena.step(optimizer.config, arenaState, lr);
    expect(Math.sqrt(sum)).toBe(globalNorm(grads));
    optimizer.update(params, grads, state, lr);
    expect(bits(arena.params)).toEqual(bits(params));
    expect(bits(arena.m)).toEqual(bits(state.slots.m!));
    expect(bits(arena.v)).toEqual(bits(state.slots.v!));
    if (state.slots.ema) expect(bits(arenaState.slots.ema!)).toEqual(bits(state.slots.ema));
    expect(arenaState.step).toBe(state.step);
  }
}

describe('AdamArena (WebAssembly SIMD update)', () => {
  it('matches the JS AdamW loop bit for bit, and Σg² matches globalNorm exactly', () => compare(adamW, { weightDecay: 0.05 }));
  it('matches Adam with coupled L2 decay bit for bit', () => compare(adam, { weightDecay: 0.1, beta1: 0.8, eps: 1e-6 }));
  it('matches AdamW with an EMA slot bit for bit', () => compare(adamW, { emaDecay: 0.99 }));

  it('copies the initial values in and leaves the caller’s arrays alone', () => {
    const params = { w: Float32Array.of(1, 2, 3) };
    const optimizer = adamW();
    const state = optimizer.init(params);
    const arena = AdamArena.create(params, state)!;
    arena.grads.w!.set([0.1, 0.2, 0.3]);
    arena.step(optimizer.config, state, 0.1);
    expect([...params.w]).toEqual([1, 2, 3]);
    expect(arena.params.w![0]).not.toBe(1);
  });
});
