import type { AuxBasis } from './aux-basis.ts';

/** The trainable LiDB factors of one layer: A_train [r, aEff] and B_train [bEff, r], row-major float32. */
export interface LidbTrainable {
  readonly aTrain: Float32Array;
  readonly bTrain: Float32Array;
}

/** ΔW as a plain LoRA pair: ΔW = up · down with up [out, r], down [r, in] (row-major). */
export interface LoraFactors {
  readonly rank: number;
  readonly down: Float32Array;
  readonly up: Float32Array;
}

/** Row-major product [m, k]·[k, n], accumulated in float64 and rounded once to float32. */
export function matmulF32(left: Float32Array, right: Float32Array, m: number, k: number, n: number): Float32Array {
  if (left.length !== m * k || right.length !== k * n) {
    throw new RangeError(`matmul: [${m}, ${k}]·[${k}, ${n}] got ${left.length} and ${right.length} values`);
  }
  const out = new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const l = left[i * k + p]!;
      if (l === 0) continue;
      const base = p * n;
      for (let j = 0; j < n; j++) row[j] = row[j]! + l * right[base + j]!;
    }
    out.set(row, i * n);
  }
  return out;
}

export function checkTrainableShape(basis: AuxBasis, trainable: LidbTrainable, rank: number): void {
  const { name } = basis.layer;
  if (trainable.aTrain.length !== rank * basis.aEff) {
    throw new RangeError(`LiDB ${name}: A_train needs [${rank}, ${basis.aEff}] = ${rank * basis.aEff} values, got ${trainable.aTrain.length}`);
  }
  if (trainable.bTrain.length !== basis.bEff * rank) {
    throw new RangeError(`LiDB ${name}: B_train needs [${basis.bEff}, ${rank}] = ${basis.bEff * rank} values, got ${trainable.bTrain.length}`);
  }
}

/** Multiplies the LiDB product out into a LoRA pair: down = A_train·A_aux, up = B_aux·B_train. */
export function lidbToLora(basis: AuxBasis, trainable: LidbTrainable, rank: number): LoraFactors {
  checkTrainableShape(basis, trainable, rank);
  const { inFeatures, outFeatures } = basis.layer;
  return {
    rank,
    down: matmulF32(trainable.aTrain, basis.aAux, rank, basis.aEff, inFeatures),
    up: matmulF32(basis.bAux, trainable.bTrain, outFeatures, basis.bEff, rank),
  };
}

/** ΔW [out, in] of a LoRA pair (scale included by the caller). */
export function loraDelta(lora: LoraFactors, outFeatures: number, inFeatures: number, scale = 1): Float32Array {
  const delta = matmulF32(lora.up, lora.down, outFeatures, lora.rank, inFeatures);
  if (scale !== 1) for (let i = 0; i < delta.length; i++) delta[i] = delta[i]! * scale;
  return delta;
}

/** ΔW = B_aux · B_train · A_train · A_aux [out, in]. */
export function lidbDelta(basis: AuxBasis, trainable: LidbTrainable, rank: number): Float32Array {
  return loraDelta(lidbToLora(basis, trainable, rank), basis.layer.outFeatures, basis.layer.inFeatures);
}
