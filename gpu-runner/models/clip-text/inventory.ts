// CLIPTextModel parameter inventory (transformers checkpoint names, `text_model.` prefix), in state-dict order.
import { type AdaptableLinear, InventoryBuilder, type ParameterSpec } from '../inventory.ts';
import type { ClipTextConfig } from './config.ts';

export const CLIP_TEXT_PREFIX = 'text_model';

/**
 * Checkpoints saved by transformers < 4.31 (SD 1.5's included) also hold the int64 buffer `position_ids` = arange(77);
 * it is not a parameter, so a loader accepts and ignores it.
 */
export const CLIP_OPTIONAL_BUFFERS = [`${CLIP_TEXT_PREFIX}.embeddings.position_ids`] as const;

export function clipLayerPath(layer: number): string {
  return `${CLIP_TEXT_PREFIX}.encoder.layers.${layer}`;
}

/** Attention q/k/v/out and MLP fc1/fc2 of every encoder layer (all with bias): the LoRA/LiDB targets. */
export function clipTextLinears(config: ClipTextConfig): AdaptableLinear[] {
  const h = config.hiddenSize;
  const linears: AdaptableLinear[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    const path = clipLayerPath(layer);
    // transformers registers k, v, q, out in this order.
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      linears.push({ name: `${path}.self_attn.${proj}`, inFeatures: h, outFeatures: h, bias: true, kind: `self_attn.${proj}` });
    }
    linears.push({ name: `${path}.mlp.fc1`, inFeatures: h, outFeatures: config.intermediateSize, bias: true, kind: 'mlp.fc1' });
    linears.push({ name: `${path}.mlp.fc2`, inFeatures: config.intermediateSize, outFeatures: h, bias: true, kind: 'mlp.fc2' });
  }
  return linears;
}

export function clipTextInventory(config: ClipTextConfig): ParameterSpec[] {
  const inventory = new InventoryBuilder();
  const h = config.hiddenSize;
  inventory.add(`${CLIP_TEXT_PREFIX}.embeddings.token_embedding.weight`, [config.vocabSize, h]);
  inventory.add(`${CLIP_TEXT_PREFIX}.embeddings.position_embedding.weight`, [config.maxPositionEmbeddings, h]);
  const linears = clipTextLinears(config);
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    const path = clipLayerPath(layer);
    const ofLayer = linears.filter((linear) => linear.name.startsWith(`${path}.`));
    for (const linear of ofLayer.filter((l) => l.kind.startsWith('self_attn'))) inventory.linear(linear.name, linear.inFeatures, linear.outFeatures);
    inventory.norm(`${path}.layer_norm1`, h);
    for (const linear of ofLayer.filter((l) => l.kind.startsWith('mlp'))) inventory.linear(linear.name, linear.inFeatures, linear.outFeatures);
    inventory.norm(`${path}.layer_norm2`, h);
  }
  inventory.norm(`${CLIP_TEXT_PREFIX}.final_layer_norm`, h);
  return inventory.build();
}
