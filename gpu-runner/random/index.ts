export { Pcg32, toU64, u64ToBigInt, type U64 } from './pcg32.ts';
export { fnv1a64, streamIdFromName } from './fnv1a64.ts';
export { uniform53, uniform24, fillUniformFloat32 } from './uniform.ts';
export { GaussianSampler, polarPair, fillGaussianFloat64, fillGaussianFloat32 } from './gaussian.ts';
export { deterministicLog } from './deterministic-log.ts';

import { streamIdFromName } from './fnv1a64.ts';
import { Pcg32 } from './pcg32.ts';

/** A generator for a named purpose under a seed: PCG32(initstate = seed, initseq = FNV-1a-64(name)). */
export function namedRng(seed: number | bigint, name: string): Pcg32 {
  return new Pcg32(seed, streamIdFromName(name));
}
