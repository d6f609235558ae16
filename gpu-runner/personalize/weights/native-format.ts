// The native weight file (FORMAT.md): a safetensors file with the trainable numbers packed per kind, in layer order,
// and everything needed to rebuild the rest (aux seed and algorithm, a, b, r, the layer selection) in `__metadata__`.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  float32ToFloat16Bits,
  parseSafetensors,
  serializeSafetensors,
  type Tensor,
  toFloat32,
} from '../../io/safetensors.ts';
import type { ClipTextConfig } from '../../models/clip-text/config.ts';
import type { UnetPlan } from '../../models/unet/plan.ts';
import {
  type AdaptedLayer,
  adaptedLayers,
  adaptedLayerSelectionSchema,
  type AdaptedLayerSelection,
} from '../lidb/adapted-layers.ts';
import type { LidbTrainable, LoraFactors } from '../lidb/delta.ts';
import { LIDB_ALGORITHM_VERSION, lidbSettingsSchema } from '../lidb/settings.ts';
import { PERSONALIZATION_METHODS, type PersonalizedWeights, type RelaxTerm } from './personalized-weights.ts';

export const NATIVE_FORMAT = 'hyperdreambooth.personalized-weights';
export const NATIVE_FORMAT_VERSION = '1';
export type WeightDtype = 'F16' | 'F32';

const TENSOR = {
  lidbA: 'lidb.A_train',
  lidbB: 'lidb.B_train',
  relaxA: 'relax.A_train',
  relaxB: 'relax.B_train',
  relaxDown: 'relax.lora_down',
  relaxUp: 'relax.lora_up',
  tiEmbedding: 'textual_inversion.embedding',
} as const;

export class WeightFileError extends Error {
  constructor(message: string) {
    super(`weight file: ${message}`);
    this.name = 'WeightFileError';
  }
}

/** SHA-256 of the layer names joined by '\n': pins the order the packed tensors follow. */
export function layerOrderSha256(layers: readonly { name: string }[]): string {
  return createHash('sha256').update(layers.map((l) => l.name).join('\n')).digest('hex');
}

const decimal = z.string().regex(/^\d+$/, 'must be a non-negative decimal integer').transform(Number);
const metadataSchema = z.object({
  format: z.literal(NATIVE_FORMAT),
  format_version: z.literal(NATIVE_FORMAT_VERSION),
  base_model_id: z.string(),
  base_model_sha256: z.string(),
  method: z.enum(PERSONALIZATION_METHODS),
  steps: decimal,
  lidb_algorithm: z.literal(LIDB_ALGORITHM_VERSION),
  lidb_aux_seed: decimal,
  lidb_a: decimal,
  lidb_b: decimal,
  lidb_r: decimal,
  layers: z.string(),
  layer_count: decimal,
  layer_order_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  relax: z.enum(['none', 'lora', 'lidb']),
  relax_rank: decimal,
  textual_inversion_token: z.string().optional(),
  textual_inversion_token_ids: z.string().optional(),
});

function packed(dtype: WeightDtype, chunks: readonly Float32Array[]): Tensor {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const flat = new Float32Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    flat.set(chunk, offset);
    offset += chunk.length;
  }
  return dtype === 'F16' ? { dtype: 'F16', shape: [total], data: float32ToFloat16Bits(flat) } : { dtype: 'F32', shape: [total], data: flat };
}

/** Kohya-style selection JSON with the checkpoint's component names. */
function selectionJson(selection: AdaptedLayerSelection): string {
  return JSON.stringify({ unet: selection.unet, text_encoder: selection.textEncoder });
}

export function encodeNativeWeights(weights: PersonalizedWeights, dtype: WeightDtype = 'F16'): Uint8Array {
  const { settings, layers, lidb, relax, meta } = weights;
  const tensors: Record<string, Tensor> = {};
  if (lidb) {
    tensors[TENSOR.lidbA] = packed(dtype, lidb.map((l) => l.aTrain));
    tensors[TENSOR.lidbB] = packed(dtype, lidb.map((l) => l.bTrain));
  }
  if (relax?.mode === 'lidb') {
    tensors[TENSOR.relaxA] = packed(dtype, relax.factors.map((l) => l.aTrain));
    tensors[TENSOR.relaxB] = packed(dtype, relax.factors.map((l) => l.bTrain));
  }
  if (relax?.mode === 'lora') {
    tensors[TENSOR.relaxDown] = packed(dtype, relax.factors.map((l) => l.down));
    tensors[TENSOR.relaxUp] = packed(dtype, relax.factors.map((l) => l.up));
  }
  const metadata: Record<string, string> = {
    format: NATIVE_FORMAT,
    format_version: NATIVE_FORMAT_VERSION,
    base_model_id: meta.baseModelId,
    base_model_sha256: meta.baseModelSha256,
    method: meta.method,
    steps: String(meta.steps),
    lidb_algorithm: LIDB_ALGORITHM_VERSION,
    lidb_aux_seed: String(settings.auxSeed),
    lidb_a: String(settings.a),
    lidb_b: String(settings.b),
    lidb_r: String(settings.r),
    layers: selectionJson(weights.selection),
    layer_count: String(layers.length),
    layer_order_sha256: layerOrderSha256(layers),
    relax: relax?.mode ?? 'none',
    relax_rank: String(relax?.rank ?? 0),
  };
  if (weights.textualInversion) {
    const { token, tokenIds, embedding } = weights.textualInversion;
    const shape = [tokenIds.length, embedding.length / tokenIds.length];
    tensors[TENSOR.tiEmbedding] = dtype === 'F16' ? { dtype: 'F16', shape, data: float32ToFloat16Bits(embedding) } : { dtype: 'F32', shape, data: embedding };
    metadata.textual_inversion_token = token;
    metadata.textual_inversion_token_ids = JSON.stringify(tokenIds);
  }
  return serializeSafetensors(tensors, metadata);
}

/** Splits a packed tensor into per-layer chunks of the given sizes, checking the total. */
function unpack(tensors: Map<string, Tensor>, name: string, sizes: readonly number[]): Float32Array[] {
  const tensor = tensors.get(name);
  if (!tensor) throw new WeightFileError(`tensor "${name}" is missing`);
  if (tensor.dtype !== 'F16' && tensor.dtype !== 'F32') throw new WeightFileError(`tensor "${name}" must be F16 or F32, got ${tensor.dtype}`);
  const values = toFloat32(tensor);
  const expected = sizes.reduce((sum, size) => sum + size, 0);
  if (values.length !== expected) throw new WeightFileError(`tensor "${name}" has ${values.length} values, the layer list needs ${expected}`);
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const size of sizes) {
    chunks.push(values.slice(offset, offset + size));
    offset += size;
  }
  return chunks;
}

/** The base model's structure, from which the layer list of a file is rebuilt (its selection applied). */
export interface BaseModelStructure {
  unet?: UnetPlan;
  textEncoder?: ClipTextConfig;
}

export function decodeNativeWeights(bytes: Uint8Array, base: BaseModelStructure): PersonalizedWeights {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes, 'personalized weights');
  } catch (error) {
    throw new WeightFileError(`not a readable safetensors file (${(error as Error).message})`);
  }
  const { header, tensors } = parsed;
  const meta = metadataSchema.safeParse(header.metadata);
  if (!meta.success) throw new WeightFileError(`bad __metadata__: ${z.prettifyError(meta.error)}`);
  const m = meta.data;
  const settings = lidbSettingsSchema.parse({ a: m.lidb_a, b: m.lidb_b, r: m.lidb_r, auxSeed: m.lidb_aux_seed });
  let selectionRaw: unknown;
  try {
    selectionRaw = JSON.parse(m.layers);
  } catch {
    throw new WeightFileError('__metadata__.layers is not JSON');
  }
  const selectionParsed = z.object({ unet: z.array(z.string()), text_encoder: z.array(z.string()) }).safeParse(selectionRaw);
  if (!selectionParsed.success) throw new WeightFileError('__metadata__.layers must be {"unet": [...], "text_encoder": [...]}');
  const selection = adaptedLayerSelectionSchema.parse({ unet: selectionParsed.data.unet, textEncoder: selectionParsed.data.text_encoder });

  const layers: AdaptedLayer[] = adaptedLayers(base, selection);
  if (layers.length !== m.layer_count || layerOrderSha256(layers) !== m.layer_order_sha256) {
    throw new WeightFileError(
      `the file's ${m.layer_count} layers do not match the base model's ${layers.length} for this selection (layer order hash differs): wrong base model?`,
    );
  }
  const aSizes = layers.map((l) => settings.r * Math.min(settings.a, l.inFeatures));
  const bSizes = layers.map((l) => Math.min(settings.b, l.outFeatures) * settings.r);
  let lidb: LidbTrainable[] | undefined;
  if (tensors.has(TENSOR.lidbA) || tensors.has(TENSOR.lidbB)) {
    const a = unpack(tensors, TENSOR.lidbA, aSizes);
    const b = unpack(tensors, TENSOR.lidbB, bSizes);
    lidb = layers.map((_, i) => ({ aTrain: a[i]!, bTrain: b[i]! }));
  }
  let relax: RelaxTerm | undefined;
  const rank = m.relax_rank;
  if (m.relax === 'lidb') {
    const a = unpack(tensors, TENSOR.relaxA, layers.map((l) => rank * Math.min(settings.a, l.inFeatures)));
    const b = unpack(tensors, TENSOR.relaxB, layers.map((l) => Math.min(settings.b, l.outFeatures) * rank));
    relax = { mode: 'lidb', rank, factors: layers.map((_, i) => ({ aTrain: a[i]!, bTrain: b[i]! })) };
  } else if (m.relax === 'lora') {
    const down = unpack(tensors, TENSOR.relaxDown, layers.map((l) => rank * l.inFeatures));
    const up = unpack(tensors, TENSOR.relaxUp, layers.map((l) => l.outFeatures * rank));
    relax = { mode: 'lora', rank, factors: layers.map((_, i): LoraFactors => ({ rank, down: down[i]!, up: up[i]! })) };
  }
  const tiTensor = tensors.get(TENSOR.tiEmbedding);
  let textualInversion: PersonalizedWeights['textualInversion'];
  if (tiTensor && m.textual_inversion_token !== undefined) {
    const ids = z.array(z.number().int().nonnegative()).safeParse(JSON.parse(m.textual_inversion_token_ids ?? '[]'));
    if (!ids.success || ids.data.length !== tiTensor.shape[0]) throw new WeightFileError('textual_inversion_token_ids must list one id per embedding row');
    textualInversion = { token: m.textual_inversion_token, tokenIds: ids.data, embedding: Float32Array.from(toFloat32(tiTensor)) };
  }
  return {
    settings,
    selection,
    layers,
    ...(lidb ? { lidb } : {}),
    ...(relax ? { relax } : {}),
    ...(textualInversion ? { textualInversion } : {}),
    meta: { baseModelId: m.base_model_id, baseModelSha256: m.base_model_sha256, method: m.method, steps: m.steps },
  };
}
