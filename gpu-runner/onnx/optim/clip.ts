import type { ParamSet } from './types.ts';

/** Added to the norm before dividing, as in PyTorch's `clip_grad_norm_`, so a zero gradient stays finite. */
export const CLIP_NORM_EPS = 1e-6;

/** √(Σ g²) over every tensor of the set, accumulated in float64. */
export function globalNorm(grads: ParamSet): number {
  let total = 0;
  for (const g of Object.values(grads)) total += sumOfSquares(g);
  return Math.sqrt(total);
}

/**
 * Σ g² in float64, in a fixed order the SIMD update loop shares (adam-simd.ts): four running sums over the elements
 * i ≡ 0, 1, 2, 3 (mod 4) of the whole quads, combined as (s₀ + s₁) + (s₂ + s₃), then the last length mod 4 elements
 * in turn. Four independent sums also keep the loop off one long chain of dependent additions.
 */
export function sumOfSquares(g: Float32Array): number {
  const quads = g.length - (g.length % 4);
  let [s0, s1, s2, s3] = [0, 0, 0, 0];
  for (let i = 0; i < quads; i += 4) {
    s0 += g[i]! * g[i]!;
    s1 += g[i + 1]! * g[i + 1]!;
    s2 += g[i + 2]! * g[i + 2]!;
    s3 += g[i + 3]! * g[i + 3]!;
  }
  let sum = s0 + s1 + (s2 + s3);
  for (let i = quads; i < g.length; i++) sum += g[i]! * g[i]!;
  return sum;
}

/**
 * Scales every gradient in place by maxNorm / (norm + eps) when the global norm exceeds `maxNorm`
 * (Pascanu et al. 2013, §3.2; PyTorch `clip_grad_norm_`). Returns the norm before clipping.
 */
export function clipByGlobalNorm(grads: ParamSet, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new Error(`clipByGlobalNorm: maxNorm must be a finite number > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  if (!Number.isFinite(norm)) throw new Error(`clipByGlobalNorm: gradient norm is ${norm}`);
  const scale = maxNorm / (norm + CLIP_NORM_EPS);
  if (scale < 1) {
    for (const g of Object.values(grads)) {
      for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale;
    }
  }
  return norm;
}
