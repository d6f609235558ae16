// What the runner checks of a native weight file before it draws with it, and before the edge stores one it did not
// get from a job (an import, contract/CONTRACT.md `POST /v1/weights/check`): one function, so an imported file passes exactly
// when a generation would take it.
import type { WeightsCheckResult } from '../../../contract/index.ts';
import { parseSafetensorsHeader } from '../../io/safetensors.ts';
import type { ClipTextConfig } from '../../models/clip-text/config.ts';
import type { UnetPlan } from '../../models/unet/plan.ts';
import { decodeNativeWeights, WeightFileError } from '../../personalize/weights/native-format.ts';
import type { PersonalizedWeights } from '../../personalize/weights/personalized-weights.ts';
import { InvalidInputError } from '../jobs/executor.ts';
import { checkTextualInversion, resultFigures } from './weight-files.ts';

/** The base model a file must have been made for: the pack's id and digest and the structure its layers come from. */
export type BaseModel = { id: string; sha256: string; unet: UnetPlan; textEncoder: ClipTextConfig };

export type CheckedWeights = { weights: PersonalizedWeights; figures: WeightsCheckResult };

/**
 * Decodes a native file against `base` (format, metadata, layer list and tensor sizes: native-format.ts), then refuses
 * a file made for another base model, textual-inversion rows that do not fit its text encoder, and any NaN or
 * infinity (they would draw a black image, not fail). Every refusal is an InvalidInputError naming the reason.
 */
export function checkWeightsFile(bytes: Uint8Array, base: BaseModel): CheckedWeights {
  let weights: PersonalizedWeights;
  try {
    weights = decodeNativeWeights(bytes, { unet: base.unet, textEncoder: base.textEncoder });
  } catch (error) {
    if (error instanceof WeightFileError) throw new InvalidInputError(error.message);
    throw error;
  }
  if (weights.meta.baseModelSha256 !== base.sha256) {
    throw new InvalidInputError(`the weights were made for base model ${weights.meta.baseModelId} (${weights.meta.baseModelSha256.slice(0, 12)}…), this runner serves ${base.id} (${base.sha256.slice(0, 12)}…)`);
  }
  checkTextualInversion(weights, base.textEncoder);
  const nonFinite = nonFiniteFactor(weights);
  if (nonFinite) throw new InvalidInputError(`weight file: non-finite numbers (NaN or infinity) in ${nonFinite}`);
  const figures = figuresOf(weights, base.id);
  if (figures.num_parameters === 0) throw new InvalidInputError('weight file: it holds no factors and no embedding rows');
  return { weights, figures: { ...figures, dtype: fileDtype(bytes) } };
}

function figuresOf(weights: PersonalizedWeights, baseModelId: string): Omit<WeightsCheckResult, 'dtype'> {
  const { rank, layers, numParameters } = resultFigures(weights);
  return { method: weights.meta.method, base_model_id: baseModelId, rank, layers, num_parameters: numParameters };
}

/** The first layer whose factors hold a NaN or an infinity, named as in the file. */
function nonFiniteFactor(weights: PersonalizedWeights): string | undefined {
  const allFinite = (values: Float32Array) => values.every(Number.isFinite);
  for (const [i, layer] of weights.layers.entries()) {
    const lidb = weights.lidb?.[i];
    if (lidb && !(allFinite(lidb.aTrain) && allFinite(lidb.bTrain))) return `the LiDB factors of ${layer.name}`;
    const relax = weights.relax?.factors[i];
    if (relax && !('down' in relax ? allFinite(relax.down) && allFinite(relax.up) : allFinite(relax.aTrain) && allFinite(relax.bTrain))) {
      return `the relax term of ${layer.name}`;
    }
  }
  return undefined;
}

/** A native file stores all its tensors in one dtype (FORMAT.md); decodeNativeWeights has accepted it as F16 or F32. */
function fileDtype(bytes: Uint8Array): WeightsCheckResult['dtype'] {
  const [first] = parseSafetensorsHeader(bytes, bytes.byteLength, 'personalized weights').tensors;
  return first?.dtype === 'F32' ? 'fp32' : 'fp16';
}
