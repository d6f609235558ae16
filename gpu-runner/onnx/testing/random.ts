import type { DType, HostTensor } from '../ir/types.ts';
import { tensor } from '../ir/types.ts';

export type Rng = () => number;

/** mulberry32: a tiny seeded PRNG so every test case is reproducible from its seed. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

export function uniform(rng: Rng, lo = -1, hi = 1): number {
  return lo + (hi - lo) * rng();
}

export function randomInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export function randomTensor(dtype: DType, dims: readonly number[], rng: Rng, sample: (rng: Rng) => number = (r) => uniform(r)): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return tensor(dtype, dims, Array.from({ length: n }, () => sample(rng)));
}
