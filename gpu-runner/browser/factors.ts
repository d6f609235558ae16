// A personalization's trained numbers by name, in float32, so the browser's weights and the runner's can be compared
// array by array (the weight files store fp16, which would hide the differences a parity check looks for).
import type { PersonalizedWeights } from '../personalize/weights/personalized-weights.ts';

export function weightFactors(weights: PersonalizedWeights): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  weights.layers.forEach((layer, i) => {
    const lidb = weights.lidb?.[i];
    if (lidb) {
      out[`lidb/${layer.name}/a`] = lidb.aTrain;
      out[`lidb/${layer.name}/b`] = lidb.bTrain;
    }
    const relax = weights.relax;
    if (relax?.mode === 'lora') {
      out[`relax/${layer.name}/down`] = relax.factors[i]!.down;
      out[`relax/${layer.name}/up`] = relax.factors[i]!.up;
    } else if (relax?.mode === 'lidb') {
      out[`relax/${layer.name}/a`] = relax.factors[i]!.aTrain;
      out[`relax/${layer.name}/b`] = relax.factors[i]!.bTrain;
    }
  });
  return out;
}

/** Largest |a − b| over every array, and the largest such difference relative to the array's largest |b|. */
export function factorDifference(a: Record<string, Float32Array>, b: Record<string, Float32Array>): { maxAbs: number; maxRel: number; worst: string } {
  const names = Object.keys(b);
  const missing = names.filter((name) => !(name in a)).concat(Object.keys(a).filter((name) => !(name in b)));
  if (missing.length > 0) throw new Error(`factors differ in names: ${missing.slice(0, 5).join(', ')}`);
  let maxAbs = 0;
  let maxRel = 0;
  let worst = '';
  for (const name of names) {
    const x = a[name]!;
    const y = b[name]!;
    if (x.length !== y.length) throw new Error(`${name}: ${x.length} values against ${y.length}`);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < y.length; i++) {
      scale = Math.max(scale, Math.abs(y[i]!));
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    }
    const rel = scale > 0 ? diff / scale : diff;
    if (diff > maxAbs) maxAbs = diff;
    if (rel > maxRel) {
      maxRel = rel;
      worst = name;
    }
  }
  return { maxAbs, maxRel, worst };
}
