// The files and figures a personalization returns, by method: the native file for every method, kohya and PEFT LoRA
// exports for the LoRA-expressible methods, the kohya/A1111 embedding for textual inversion (CONTRACT.md "outputs").
import { weightFormatsOf } from '../../../contract/index.ts';
import { TOKEN_EMBEDDING_PARAM } from '../../personalize/finetune/textual-inversion.ts';
import { TEXT_ENCODER_COMPONENT } from '../../personalize/lidb/adapted-layers.ts';
import type { AuxBasis } from '../../personalize/lidb/aux-basis.ts';
import type { ClipTextConfig } from '../../models/clip-text/config.ts';
import { exportLora } from '../../personalize/weights/lora-export.ts';
import { encodeNativeWeights } from '../../personalize/weights/native-format.ts';
import type { PersonalizedWeights } from '../../personalize/weights/personalized-weights.ts';
import { exportTextualInversion } from '../../personalize/weights/textual-inversion-format.ts';
import { InvalidInputError, type PersonalizationMethod, type PersonalizeOutput, type WeightDtype, type WeightFormat } from '../jobs/executor.ts';

/** The one "layer" textual inversion adapts: the text encoder's token table (named like the adapted layers). */
export const TEXTUAL_INVERSION_LAYER = `${TEXT_ENCODER_COMPONENT}.${TOKEN_EMBEDDING_PARAM.replace(/\.weight$/, '')}`;

/** Refuses outputs the method cannot write before any work is done (the contract's schema refuses them too). */
export function checkOutputs(method: PersonalizationMethod, outputs: ReadonlyArray<{ format: WeightFormat }>): void {
  const formats: readonly string[] = weightFormatsOf(method);
  const refused = outputs.find(({ format }) => !formats.includes(format));
  if (refused) throw new InvalidInputError(`method ${method} has no ${refused.format} file; it writes ${formats.join(', ')}`);
}

export function weightFiles(
  weights: PersonalizedWeights,
  bases: readonly AuxBasis[],
  outputs: ReadonlyArray<{ format: WeightFormat; dtype: WeightDtype }>,
): PersonalizeOutput['files'] {
  checkOutputs(weights.meta.method, outputs);
  return outputs.map(({ format, dtype }) => {
    const fileDtype = dtype === 'fp16' ? 'F16' : 'F32';
    let bytes: Uint8Array;
    if (format === 'lidb') bytes = encodeNativeWeights(weights, fileDtype);
    else if (weights.textualInversion) bytes = exportTextualInversion(weights, fileDtype);
    else bytes = exportLora(weights, bases, format, fileDtype);
    return { format, dtype, bytes };
  });
}

/** rank, layers and stored numbers as the contract's result reports them. */
export function resultFigures(weights: PersonalizedWeights): Pick<PersonalizeOutput, 'rank' | 'layers' | 'numParameters'> {
  const ti = weights.textualInversion;
  if (ti && !weights.lidb && !weights.relax) {
    // Not a low-rank method: rank 0, and the token table is the one thing it changes.
    return { rank: 0, layers: [TEXTUAL_INVERSION_LAYER], numParameters: ti.embedding.length };
  }
  return {
    rank: weights.relax?.rank ?? weights.settings.r,
    layers: weights.layers.map((layer) => layer.name),
    numParameters: storedNumbers(weights),
  };
}

/**
 * The numbers a weight file stores: the LiDB factors, the relax term, TI rows (docs/method.md: 150 per layer at r = 1).
 */
function storedNumbers(weights: PersonalizedWeights): number {
  let count = weights.textualInversion?.embedding.length ?? 0;
  for (const factor of weights.lidb ?? []) count += factor.aTrain.length + factor.bTrain.length;
  for (const factor of weights.relax?.factors ?? []) count += 'down' in factor ? factor.down.length + factor.up.length : factor.aTrain.length + factor.bTrain.length;
  return count;
}

/**
 * A decoded native file's textual-inversion rows must fit this base model's text encoder before they become graph
 * inputs (a bad file is the client's problem, not an onnxruntime error).
 */
export function checkTextualInversion(weights: PersonalizedWeights, config: ClipTextConfig): void {
  const ti = weights.textualInversion;
  if (!ti) return;
  const vectors = ti.tokenIds.length;
  if (vectors === 0) throw new InvalidInputError('the textual-inversion embedding lists no token ids');
  if (ti.embedding.length !== vectors * config.hiddenSize) {
    throw new InvalidInputError(`the textual-inversion embedding has ${ti.embedding.length} numbers; ${vectors} vectors of this text encoder's width ${config.hiddenSize} are ${vectors * config.hiddenSize}`);
  }
  if (new Set(ti.tokenIds).size !== vectors) throw new InvalidInputError('the textual-inversion token ids must be distinct');
  const outside = ti.tokenIds.find((id) => id >= config.vocabSize);
  if (outside !== undefined) throw new InvalidInputError(`textual-inversion token id ${outside} is outside the vocabulary (${config.vocabSize})`);
  if (!ti.embedding.every(Number.isFinite)) throw new InvalidInputError('the textual-inversion embedding holds non-finite numbers');
}
