import type { ParamSet } from './types.ts';

/** Added to the norm before dividing, as in PyTorch's `clip_grad_norm_`, so a zero gradient stays finite. */
export const CLIP_NORM_EPS = 1e-6;

/** √(Σ g²) over every tensor of the set, accumulated in float64. */
export function globalNorm(grads: ParamSet): number {
  let sumOfSquares = 0;
  for (const g of Object.values(grads)) {
    for (let i = 0; i < g.length; i++) sumOfSquares += g[i]! * g[i]!;
  }
  return Math.sqrt(sumOfSquares);
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
