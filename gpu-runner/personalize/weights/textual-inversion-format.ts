// Textual-inversion weights as the embedding files other Stable Diffusion tools load: one tensor `emb_params`
// [vectors, hidden], the layout kohya's sd-scripts write and AUTOMATIC1111's web UI and diffusers'
// `load_textual_inversion` read. The native file (native-format.ts) keeps the same rows plus everything the runner
// needs to rebuild the personalized model; this one is for use elsewhere.
import { z } from 'zod';
import { float32ToFloat16Bits, parseSafetensors, serializeSafetensors, type Tensor, toFloat32 } from '../../io/safetensors.ts';
import { type WeightDtype, WeightFileError } from './native-format.ts';
import type { PersonalizedWeights } from './personalized-weights.ts';

/** The tensor name of kohya's and A1111's safetensors embeddings (SD 1.x: one CLIP-L table). */
export const EMBEDDING_TENSOR = 'emb_params';
export const TEXTUAL_INVERSION_SOURCE = 'hyperdreambooth';

export interface TextualInversionFile {
  /** The trigger text the embedding was trained for (A1111 uses the file name instead). */
  readonly token: string | undefined;
  /** The CLIP token ids whose rows the vectors replace in this product; absent for files made elsewhere. */
  readonly tokenIds: readonly number[] | undefined;
  /** [vectors, hidden], row-major. */
  readonly embedding: Float32Array;
  readonly vectors: number;
  readonly hidden: number;
  /** `__metadata__` as written (base model, method, steps for files from this product). */
  readonly metadata: Readonly<Record<string, string>>;
}

export function exportTextualInversion(weights: PersonalizedWeights, dtype: WeightDtype = 'F16'): Uint8Array {
  const ti = weights.textualInversion;
  if (!ti) throw new RangeError(`weights of method ${weights.meta.method} hold no textual-inversion embedding`);
  const vectors = ti.tokenIds.length;
  if (vectors === 0 || ti.embedding.length % vectors !== 0) {
    throw new RangeError(`a textual-inversion embedding of ${ti.embedding.length} numbers does not split into ${vectors} rows`);
  }
  const shape = [vectors, ti.embedding.length / vectors];
  const tensor: Tensor = dtype === 'F16' ? { dtype: 'F16', shape, data: float32ToFloat16Bits(ti.embedding) } : { dtype: 'F32', shape, data: ti.embedding };
  return serializeSafetensors(
    { [EMBEDDING_TENSOR]: tensor },
    {
      format: 'pt',
      textual_inversion_source: TEXTUAL_INVERSION_SOURCE,
      token: ti.token,
      token_ids: JSON.stringify(ti.tokenIds),
      vectors: String(vectors),
      base_model_id: weights.meta.baseModelId,
      base_model_sha256: weights.meta.baseModelSha256,
      method: weights.meta.method,
      steps: String(weights.meta.steps),
    },
  );
}

const tokenIdsSchema = z.array(z.number().int().nonnegative());

/**
 * Reads a safetensors embedding: `emb_params` (kohya, A1111), or a file whose only tensor is named after its token
 * (diffusers' `learned_embeds.safetensors`). A 1-D tensor is one vector.
 */
export function importTextualInversion(bytes: Uint8Array): TextualInversionFile {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes, 'textual-inversion embedding');
  } catch (error) {
    throw new WeightFileError(`not a readable safetensors file (${(error as Error).message})`);
  }
  const metadata = parsed.header.metadata;
  let name = EMBEDDING_TENSOR;
  let tensor = parsed.tensors.get(EMBEDDING_TENSOR);
  if (!tensor) {
    if (parsed.tensors.size !== 1) {
      throw new WeightFileError(`an embedding file holds "${EMBEDDING_TENSOR}" or exactly one tensor; this one has ${[...parsed.tensors.keys()].join(', ') || 'none'}`);
    }
    [[name, tensor]] = [...parsed.tensors.entries()] as [[string, Tensor]];
  }
  if (tensor.dtype !== 'F16' && tensor.dtype !== 'F32' && tensor.dtype !== 'BF16') {
    throw new WeightFileError(`tensor "${name}" must be F16, BF16 or F32, got ${tensor.dtype}`);
  }
  if (tensor.shape.length !== 1 && tensor.shape.length !== 2) throw new WeightFileError(`tensor "${name}" must be [vectors, hidden] or [hidden], got [${tensor.shape.join(', ')}]`);
  const [vectors, hidden] = tensor.shape.length === 1 ? [1, tensor.shape[0]!] : [tensor.shape[0]!, tensor.shape[1]!];
  if (vectors === 0 || hidden === 0) throw new WeightFileError(`tensor "${name}" is empty`);
  let tokenIds: number[] | undefined;
  if (metadata.token_ids !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(metadata.token_ids);
    } catch {
      throw new WeightFileError('__metadata__.token_ids is not JSON');
    }
    const ids = tokenIdsSchema.safeParse(raw);
    if (!ids.success || ids.data.length !== vectors) throw new WeightFileError(`__metadata__.token_ids must list one token id per vector (${vectors})`);
    tokenIds = ids.data;
  }
  const token = metadata.token ?? (name === EMBEDDING_TENSOR ? undefined : name);
  return { token, tokenIds, embedding: Float32Array.from(toFloat32(tensor)), vectors, hidden, metadata };
}
