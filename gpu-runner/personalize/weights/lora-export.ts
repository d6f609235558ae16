// Export to standard LoRA files: the LiDB product multiplied out and the relax term concatenated in rank, so
// ΔW = up · down (· alpha / rank = 1) per layer, loadable by tools that know nothing of LiDB.
import { float32ToFloat16Bits, serializeSafetensors, type Tensor } from '../../io/safetensors.ts';
import type { AuxBasis } from '../lidb/aux-basis.ts';
import { KOHYA_SUFFIX, kohyaModuleKey, PEFT_SUFFIX, peftModuleKey } from './lora-names.ts';
import type { WeightDtype } from './native-format.ts';
import { checkPersonalizedWeights, layerAsLora, type PersonalizedWeights } from './personalized-weights.ts';

export type LoraFormat = 'kohya' | 'peft';

function tensor(dtype: WeightDtype, shape: number[], values: Float32Array): Tensor {
  return dtype === 'F16' ? { dtype: 'F16', shape, data: float32ToFloat16Bits(values) } : { dtype: 'F32', shape, data: values };
}

export function exportLora(
  weights: PersonalizedWeights,
  bases: readonly AuxBasis[],
  format: LoraFormat,
  dtype: WeightDtype = 'F16',
): Uint8Array {
  checkPersonalizedWeights(weights, bases);
  const tensors: Record<string, Tensor> = {};
  let rankSeen = 0;
  weights.layers.forEach((layer, i) => {
    const lora = layerAsLora(weights, bases[i]!, i);
    if (!lora) return;
    rankSeen = lora.rank;
    const down = tensor(dtype, [lora.rank, layer.inFeatures], lora.down);
    const up = tensor(dtype, [layer.outFeatures, lora.rank], lora.up);
    if (format === 'kohya') {
      const key = kohyaModuleKey(layer);
      tensors[key + KOHYA_SUFFIX.down] = down;
      tensors[key + KOHYA_SUFFIX.up] = up;
      // alpha = rank: kohya's scale alpha / rank is 1, so the file's ΔW is exactly up · down.
      tensors[key + KOHYA_SUFFIX.alpha] = tensor(dtype, [], Float32Array.of(lora.rank));
    } else {
      const key = peftModuleKey(layer);
      tensors[key + PEFT_SUFFIX.down] = down;
      tensors[key + PEFT_SUFFIX.up] = up;
    }
  });
  if (Object.keys(tensors).length === 0) throw new RangeError('these weights hold no LoRA-expressible term (textual inversion only?)');
  const metadata: Record<string, string> = {
    format: 'pt',
    lora_source: 'hyperdreambooth',
    base_model_id: weights.meta.baseModelId,
    base_model_sha256: weights.meta.baseModelSha256,
    method: weights.meta.method,
    rank: String(rankSeen),
    alpha: String(rankSeen),
  };
  if (format === 'kohya') {
    metadata.ss_network_module = 'networks.lora';
    metadata.ss_network_dim = String(rankSeen);
    metadata.ss_network_alpha = String(rankSeen);
  }
  return serializeSafetensors(tensors, metadata);
}
