import { type AuxBasis, generateAuxBasis, type LidbLayerShape } from './aux-basis.ts';
import type { LidbSettings } from './settings.ts';

/**
 * The aux bases of a whole layer list, memoized per (seed, a, b, name, in, out): building SD 1.5's 200 takes seconds,
 * and every predict/finetune of one process reuses them.
 */
const cache = new Map<string, AuxBasis>();
/** Beyond this many cached bases (two SD 1.5 sets of 200, ≈ 220 MB) the oldest are dropped. */
const MAX_CACHED_BASES = 400;

function cacheKey(seed: number, a: number, b: number, layer: LidbLayerShape): string {
  return `${seed}|${a}|${b}|${layer.name}|${layer.inFeatures}|${layer.outFeatures}`;
}

export function auxBasisCached(seed: number, layer: LidbLayerShape, a: number, b: number): AuxBasis {
  const key = cacheKey(seed, a, b, layer);
  const hit = cache.get(key);
  if (hit) return hit;
  const basis = generateAuxBasis(seed, layer, a, b);
  if (cache.size >= MAX_CACHED_BASES) cache.delete(cache.keys().next().value!);
  cache.set(key, basis);
  return basis;
}

export function auxBases(layers: readonly LidbLayerShape[], settings: Pick<LidbSettings, 'auxSeed' | 'a' | 'b'>): AuxBasis[] {
  return layers.map((layer) => auxBasisCached(settings.auxSeed, layer, settings.a, settings.b));
}
