import { fillGaussianFloat64, namedRng } from '../../random/index.ts';
import { orthonormalizeRows } from './orthonormalize.ts';
import { LIDB_ALGORITHM_VERSION } from './settings.ts';

/** A linear layer W ∈ R^{out×in} (torch `nn.Linear` layout) that LiDB adapts, by its fully qualified name. */
export interface LidbLayerShape {
  /** e.g. `unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q` (see LIDB.md "Layer names"). */
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** The frozen bases of one layer: ΔW = B_aux · B_train · A_train · A_aux. */
export interface AuxBasis {
  readonly layer: LidbLayerShape;
  /** min(a, in): rows of A_aux. */
  readonly aEff: number;
  /** min(b, out): columns of B_aux. */
  readonly bEff: number;
  /** A_aux, row-major [aEff, in]: orthonormal rows scaled by sqrt(in / aEff). */
  readonly aAux: Float32Array;
  /** B_aux, row-major [out, bEff]: orthonormal columns (scale 1). */
  readonly bAux: Float32Array;
}

/** The stream name for one matrix of one layer; the version prefix keeps future algorithms' streams apart. */
export function auxStreamName(layerName: string, matrix: 'A_aux' | 'B_aux'): string {
  return `${LIDB_ALGORITHM_VERSION}/${layerName}/${matrix}`;
}

/**
 * Scale of A_aux's rows: sqrt(in / aEff), so that E‖A_aux·x‖² = ‖x‖² for isotropic x (a projection onto aEff of in
 * orthonormal directions keeps aEff/in of the energy). B_aux is an exact isometry (‖B_aux·y‖ = ‖y‖) at scale 1. Both
 * aux maps then preserve activation energy, so ‖ΔW·x‖ ≈ ‖B_train·A_train·(A_aux·x)‖ has the same scale in every layer
 * whatever its width, and one learning rate / one head initialization fits all 200 layers.
 */
export function auxDownScale(inFeatures: number, aEff: number): number {
  return Math.sqrt(inFeatures / aEff);
}
export const AUX_UP_SCALE = 1;

function checkLayer(layer: LidbLayerShape): void {
  if (!layer.name) throw new RangeError('LiDB layer needs a name');
  for (const [what, value] of [['inFeatures', layer.inFeatures], ['outFeatures', layer.outFeatures]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`LiDB layer ${layer.name}: ${what} must be a positive integer, got ${value}`);
  }
}

/** Orthonormal rows (float64) of a fresh Gaussian matrix from the layer's named stream. */
function orthonormalGaussianRows(seed: number, stream: string, rows: number, cols: number): Float64Array {
  const gaussian = fillGaussianFloat64(namedRng(seed, stream), rows * cols);
  return orthonormalizeRows(gaussian, rows, cols);
}

/** Builds the frozen aux bases of one layer, bit for bit as LIDB.md specifies. */
export function generateAuxBasis(seed: number, layer: LidbLayerShape, a: number, b: number): AuxBasis {
  checkLayer(layer);
  const { inFeatures, outFeatures } = layer;
  const aEff = Math.min(a, inFeatures);
  const bEff = Math.min(b, outFeatures);

  const qa = orthonormalGaussianRows(seed, auxStreamName(layer.name, 'A_aux'), aEff, inFeatures);
  const scaleA = auxDownScale(inFeatures, aEff);
  const aAux = new Float32Array(aEff * inFeatures);
  for (let i = 0; i < aAux.length; i++) aAux[i] = qa[i]! * scaleA;

  // Rows of the generated matrix are the columns of B_aux: B_aux[o][j] = Q[j][o].
  const qb = orthonormalGaussianRows(seed, auxStreamName(layer.name, 'B_aux'), bEff, outFeatures);
  const bAux = new Float32Array(outFeatures * bEff);
  for (let j = 0; j < bEff; j++) {
    for (let o = 0; o < outFeatures; o++) bAux[o * bEff + j] = qb[j * outFeatures + o]! * AUX_UP_SCALE;
  }
  return { layer, aEff, bEff, aAux, bAux };
}
