import type { Pcg32 } from './pcg32.ts';

const TWO_POW_26 = 67_108_864;
const TWO_POW_MINUS_53 = 1 / 9_007_199_254_740_992;
const TWO_POW_MINUS_24 = 1 / 16_777_216;

/**
 * Uniform double in [0, 1) with 53 random bits from two draws x then y: ((x >>> 5) · 2^26 + (y >>> 6)) · 2^−53.
 * (The same construction as numpy's legacy `random_sample` / Mersenne Twister `genrand_res53`.) Exact, no rounding.
 */
export function uniform53(rng: Pcg32): number {
  const x = rng.nextUint32() >>> 5;
  const y = rng.nextUint32() >>> 6;
  return (x * TWO_POW_26 + y) * TWO_POW_MINUS_53;
}

/** Uniform float32 in [0, 1) with 24 random bits from one draw: (x >>> 8) · 2^−24. Exact in float32. */
export function uniform24(rng: Pcg32): number {
  return (rng.nextUint32() >>> 8) * TWO_POW_MINUS_24;
}

export function fillUniformFloat32(rng: Pcg32, length: number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = uniform24(rng);
  return out;
}
