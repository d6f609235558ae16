import { deterministicLog } from './deterministic-log.ts';
import type { Pcg32 } from './pcg32.ts';
import { uniform53 } from './uniform.ts';

/**
 * Standard normal samples by Marsaglia's polar method (Marsaglia & Bray 1964, the polar form of Box–Muller), which needs
 * no sin/cos, and with `deterministicLog` for ln, so the values are bit-identical in any language:
 *
 *   repeat: u = 2·U − 1, v = 2·U' − 1 (U, U' from `uniform53`, U first), s = u·u + v·v, until 0 < s < 1;
 *   f = sqrt((−2 · ln s) / s); emit u·f, then v·f.
 *
 * A generator owns its pair: a fill of n values consumes ⌈n/2⌉ pairs and drops the spare of an odd n, so a matrix's
 * values never depend on what was drawn before from another generator.
 */
export class GaussianSampler {
  private spare: number | undefined;

  constructor(private readonly rng: Pcg32) {}

  next(): number {
    if (this.spare !== undefined) {
      const value = this.spare;
      this.spare = undefined;
      return value;
    }
    const [first, second] = polarPair(this.rng);
    this.spare = second;
    return first;
  }
}

export function polarPair(rng: Pcg32): [number, number] {
  for (;;) {
    const u = 2 * uniform53(rng) - 1;
    const v = 2 * uniform53(rng) - 1;
    const s = u * u + v * v;
    if (s >= 1 || s === 0) continue;
    const f = Math.sqrt((-2 * deterministicLog(s)) / s);
    return [u * f, v * f];
  }
}

/** n standard normals in float64 from a fresh pair sequence (the spare of an odd n is dropped). */
export function fillGaussianFloat64(rng: Pcg32, length: number): Float64Array {
  const out = new Float64Array(length);
  for (let i = 0; i < length; i += 2) {
    const [a, b] = polarPair(rng);
    out[i] = a;
    if (i + 1 < length) out[i + 1] = b;
  }
  return out;
}

/** The float64 normals of `fillGaussianFloat64` rounded to float32 (round-to-nearest-even). */
export function fillGaussianFloat32(rng: Pcg32, length: number, std = 1): Float32Array {
  const values = fillGaussianFloat64(rng, length);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = values[i]! * std;
  return out;
}
