// The in-memory form of a personalization result: LiDB factors per adapted layer, plus the rank-relaxed term.
import { type AuxBasis } from '../lidb/aux-basis.ts';
import type { AdaptedLayer, AdaptedLayerSelection } from '../lidb/adapted-layers.ts';
import { checkTrainableShape, type LidbTrainable, lidbToLora, type LoraFactors } from '../lidb/delta.ts';
import type { LidbSettings } from '../lidb/settings.ts';

/** The personalization methods of the API (docs/method.md): the method and its baselines. */
export const PERSONALIZATION_METHODS = ['hyperdreambooth', 'dreambooth-lora', 'lidb-zero', 'hyper-only', 'textual-inversion'] as const;
export type PersonalizationMethod = (typeof PERSONALIZATION_METHODS)[number];

/**
 * The rank-relaxed term of phase 2 (HyperDreamBooth §3.3): `lora` is a plain rank-R LoRA per layer (down [R, in],
 * up [out, R]); `lidb` is rank R inside the same frozen aux bases (A_train [R, a′], B_train [b′, R]).
 */
export type RelaxTerm =
  | { readonly mode: 'lora'; readonly rank: number; readonly factors: readonly LoraFactors[] }
  | { readonly mode: 'lidb'; readonly rank: number; readonly factors: readonly LidbTrainable[] };

export interface PersonalizedWeightsMeta {
  readonly baseModelId: string;
  /** Hex SHA-256 identifying the base model's weights (the runner computes it once per model pack). */
  readonly baseModelSha256: string;
  readonly method: PersonalizationMethod;
  /** Optimization steps that produced the weights (0 for `hyper-only`). */
  readonly steps: number;
}

export interface PersonalizedWeights {
  readonly settings: LidbSettings;
  readonly selection: AdaptedLayerSelection;
  readonly layers: readonly AdaptedLayer[];
  /** One entry per layer (same order), or absent for methods without LiDB (`dreambooth-lora`, `textual-inversion`). */
  readonly lidb?: readonly LidbTrainable[];
  readonly relax?: RelaxTerm;
  /** `textual-inversion`: the learned embeddings [tokenIds.length, hidden] of the identifier's CLIP tokens. */
  readonly textualInversion?: { readonly token: string; readonly tokenIds: readonly number[]; readonly embedding: Float32Array };
  readonly meta: PersonalizedWeightsMeta;
}

/** Throws with the layer's name when any factor has the wrong size for its layer. */
export function checkPersonalizedWeights(weights: PersonalizedWeights, bases: readonly AuxBasis[]): void {
  const { layers, lidb, relax } = weights;
  if (bases.length !== layers.length) throw new RangeError(`weights have ${layers.length} layers but ${bases.length} aux bases`);
  if (lidb && lidb.length !== layers.length) throw new RangeError(`weights have ${layers.length} layers but ${lidb.length} LiDB entries`);
  if (relax && relax.factors.length !== layers.length) {
    throw new RangeError(`weights have ${layers.length} layers but ${relax.factors.length} relax entries`);
  }
  layers.forEach((layer, i) => {
    const basis = bases[i]!;
    if (basis.layer.name !== layer.name) throw new RangeError(`aux basis ${i} is for ${basis.layer.name}, not ${layer.name}`);
    if (lidb) checkTrainableShape(basis, lidb[i]!, weights.settings.r);
    if (relax?.mode === 'lidb') checkTrainableShape(basis, relax.factors[i]!, relax.rank);
    if (relax?.mode === 'lora') {
      const f = relax.factors[i]!;
      if (f.rank !== relax.rank || f.down.length !== relax.rank * layer.inFeatures || f.up.length !== layer.outFeatures * relax.rank) {
        throw new RangeError(`relax LoRA of ${layer.name} must be down [${relax.rank}, ${layer.inFeatures}], up [${layer.outFeatures}, ${relax.rank}]`);
      }
    }
  });
}

/**
 * A layer's whole ΔW as one LoRA pair of rank r + R: the LiDB product multiplied out, and the relax term concatenated in
 * rank (down rows stacked, up columns side by side), so ΔW = up · down exactly.
 */
export function layerAsLora(weights: PersonalizedWeights, basis: AuxBasis, index: number): LoraFactors | undefined {
  const parts: LoraFactors[] = [];
  if (weights.lidb) parts.push(lidbToLora(basis, weights.lidb[index]!, weights.settings.r));
  const relax = weights.relax;
  if (relax?.mode === 'lidb') parts.push(lidbToLora(basis, relax.factors[index]!, relax.rank));
  if (relax?.mode === 'lora') parts.push(relax.factors[index]!);
  if (parts.length === 0) return undefined;
  return concatLoraInRank(parts, basis.layer.outFeatures, basis.layer.inFeatures);
}

export function concatLoraInRank(parts: readonly LoraFactors[], outFeatures: number, inFeatures: number): LoraFactors {
  const rank = parts.reduce((sum, part) => sum + part.rank, 0);
  const down = new Float32Array(rank * inFeatures);
  const up = new Float32Array(outFeatures * rank);
  let offset = 0;
  for (const part of parts) {
    down.set(part.down, offset * inFeatures);
    for (let o = 0; o < outFeatures; o++) {
      for (let k = 0; k < part.rank; k++) up[o * rank + offset + k] = part.up[o * part.rank + k]!;
    }
    offset += part.rank;
  }
  return { rank, down, up };
}
