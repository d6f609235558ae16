// The runner double's base model and weight files: the tiny pack's structure (gpu-runner/pack/tiny-config.ts) under a
// fixed digest, files made by the runner's own encoder, and the runner's own check (executors/weight-check.ts), so
// an edge test that imports a file meets the validation a real runner applies, without loading a model.
import { serializeSafetensors } from '../../gpu-runner/io/safetensors.ts';
import { parseClipTextConfig } from '../../gpu-runner/models/clip-text/config.ts';
import { parseUnetConfig } from '../../gpu-runner/models/unet/config.ts';
import { planUnet } from '../../gpu-runner/models/unet/plan.ts';
import { TINY_PACK_ID, TINY_TEXT_ENCODER_CONFIG, TINY_UNET_CONFIG } from '../../gpu-runner/pack/tiny-config.ts';
import { adaptedLayers, adaptedLayerSelectionSchema } from '../../gpu-runner/personalize/lidb/adapted-layers.ts';
import { lidbSettings } from '../../gpu-runner/personalize/lidb/settings.ts';
import { encodeNativeWeights } from '../../gpu-runner/personalize/weights/native-format.ts';
import type { PersonalizedWeights } from '../../gpu-runner/personalize/weights/personalized-weights.ts';
import { checkWeightsFile, type BaseModel } from '../../gpu-runner/server/executors/weight-check.ts';
import { InvalidInputError } from '../../gpu-runner/server/jobs/executor.ts';
import type { WeightsCheckResult } from '../../contract/index.ts';

export const DOUBLE_BASE_MODEL: BaseModel = {
  id: TINY_PACK_ID,
  sha256: 'd0'.repeat(32),
  unet: planUnet(parseUnetConfig(TINY_UNET_CONFIG)),
  textEncoder: parseClipTextConfig(TINY_TEXT_ENCODER_CONFIG),
};

/** The files tests ask the double for (GET /control/weights-file?variant=…). */
export const WEIGHT_FILE_VARIANTS = ['valid', 'valid-fp32', 'other-base-model', 'nan', 'truncated', 'not-native', 'not-safetensors'] as const;
export type WeightFileVariant = (typeof WEIGHT_FILE_VARIANTS)[number];

function lidbWeights(sha256: string, seed: number): PersonalizedWeights {
  const selection = adaptedLayerSelectionSchema.parse({});
  const layers = adaptedLayers(DOUBLE_BASE_MODEL, selection);
  const settings = lidbSettings({});
  // Small deterministic numbers; what they are does not matter to a check.
  const fill = (n: number, salt: number) => Float32Array.from({ length: n }, (_, i) => (((i * 7919 + salt * 104729 + seed) % 2001) - 1000) / 1e5);
  return {
    settings,
    selection,
    layers,
    lidb: layers.map((l, i) => ({ aTrain: fill(settings.r * Math.min(settings.a, l.inFeatures), 2 * i), bTrain: fill(Math.min(settings.b, l.outFeatures) * settings.r, 2 * i + 1) })),
    meta: { baseModelId: DOUBLE_BASE_MODEL.id, baseModelSha256: sha256, method: 'hyperdreambooth', steps: 40 },
  };
}

export function weightFile(variant: WeightFileVariant, seed = 1): Uint8Array {
  switch (variant) {
    case 'valid':
      return encodeNativeWeights(lidbWeights(DOUBLE_BASE_MODEL.sha256, seed), 'F16');
    case 'valid-fp32':
      return encodeNativeWeights(lidbWeights(DOUBLE_BASE_MODEL.sha256, seed), 'F32');
    case 'other-base-model':
      return encodeNativeWeights(lidbWeights('0e'.repeat(32), seed), 'F16');
    case 'nan': {
      const weights = lidbWeights(DOUBLE_BASE_MODEL.sha256, seed);
      weights.lidb![3]!.aTrain[0] = Number.NaN;
      return encodeNativeWeights(weights, 'F32');
    }
    case 'truncated': {
      const bytes = encodeNativeWeights(lidbWeights(DOUBLE_BASE_MODEL.sha256, seed), 'F16');
      return bytes.slice(0, bytes.byteLength - 64);
    }
    case 'not-native':
      return serializeSafetensors({ emb_params: { dtype: 'F32', shape: [1, 4], data: new Float32Array([1, 2, 3, 4]) } }, { format: 'pt' });
    case 'not-safetensors':
      return new TextEncoder().encode('these are not weights');
  }
}

/** The double's answer to POST /v1/weights/check: the runner's check on the double's base model. */
export function checkWeights(bytes: Uint8Array): { status: 200; body: WeightsCheckResult } | { status: 422; body: { error: { code: string; message: string } } } {
  try {
    return { status: 200, body: checkWeightsFile(bytes, DOUBLE_BASE_MODEL).figures };
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    return { status: 422, body: { error: { code: 'invalid_weights', message: error.message } } };
  }
}
