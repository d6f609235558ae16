// Which linear layers LiDB adapts, derived from the model configs through sd-models' adaptable-linear enumeration.
import { z } from 'zod';
import { clipTextLinears } from '../../models/clip-text/inventory.ts';
import type { ClipTextConfig } from '../../models/clip-text/config.ts';
import type { AdaptableLinear } from '../../models/inventory.ts';
import { unetAttentionLinears } from '../../models/unet/inventory.ts';
import type { UnetPlan } from '../../models/unet/plan.ts';
import type { LidbLayerShape } from './aux-basis.ts';

/** Pipeline component names (diffusers' `model_index.json`), used as the first segment of every adapted layer's name. */
export const UNET_COMPONENT = 'unet';
export const TEXT_ENCODER_COMPONENT = 'text_encoder';
export type AdaptedComponent = typeof UNET_COMPONENT | typeof TEXT_ENCODER_COMPONENT;

/** UNet attention projections: self- (attn1) and cross-attention (attn2) q, k, v, out (HyperDreamBooth §4, "Setup"). */
export const UNET_ATTENTION_KINDS = [
  'attn1.to_q', 'attn1.to_k', 'attn1.to_v', 'attn1.to_out.0',
  'attn2.to_q', 'attn2.to_k', 'attn2.to_v', 'attn2.to_out.0',
] as const;
/**
 * CLIP text encoder attention q, k, v, out and MLP fc1, fc2: with the UNet's 128, SD 1.5's 200 layers (docs/method.md).
 */
export const TEXT_ENCODER_KINDS = [
  'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.out_proj', 'mlp.fc1', 'mlp.fc2',
] as const;

export const adaptedLayerSelectionSchema = z.object({
  unet: z.array(z.enum(UNET_ATTENTION_KINDS)).default([...UNET_ATTENTION_KINDS]),
  textEncoder: z.array(z.enum(TEXT_ENCODER_KINDS)).default([...TEXT_ENCODER_KINDS]),
});
export type AdaptedLayerSelection = z.output<typeof adaptedLayerSelectionSchema>;

/** One adapted layer: its shape, fully qualified name (`unet.…` / `text_encoder.…`) and where it lives. */
export interface AdaptedLayer extends LidbLayerShape {
  readonly component: AdaptedComponent;
  /** The module path inside its component's checkpoint (the weight is `${modulePath}.weight`). */
  readonly modulePath: string;
  readonly kind: string;
  readonly bias: boolean;
}

function qualify(component: AdaptedComponent, linear: AdaptableLinear): AdaptedLayer {
  return {
    name: `${component}.${linear.name}`,
    component,
    modulePath: linear.name,
    kind: linear.kind,
    inFeatures: linear.inFeatures,
    outFeatures: linear.outFeatures,
    bias: linear.bias,
  };
}

/**
 * The adapted layers in their stable order (LIDB.md "Layer order"): the UNet's in its checkpoint (state-dict) order
 * (down blocks, up blocks, then the mid block, as diffusers registers them; per transformer block attn1 then attn2;
 * to_q, to_k, to_v, to_out.0), then the text encoder's (layer 0 … N−1; per layer the checkpoint's
 * registration order k, v, q, out_proj, fc1, fc2). Filtering by kind keeps this order.
 */
export function adaptedLayers(
  models: { unet?: UnetPlan; textEncoder?: ClipTextConfig },
  selection: Partial<AdaptedLayerSelection> = {},
): AdaptedLayer[] {
  const chosen = adaptedLayerSelectionSchema.parse(selection);
  const unetKinds = new Set<string>(chosen.unet);
  const textKinds = new Set<string>(chosen.textEncoder);
  const layers: AdaptedLayer[] = [];
  if (models.unet) {
    for (const linear of unetAttentionLinears(models.unet)) if (unetKinds.has(linear.kind)) layers.push(qualify(UNET_COMPONENT, linear));
  }
  if (models.textEncoder) {
    for (const linear of clipTextLinears(models.textEncoder)) if (textKinds.has(linear.kind)) layers.push(qualify(TEXT_ENCODER_COMPONENT, linear));
  }
  return layers;
}

/** Trainable numbers per layer: r·min(a, in) + min(b, out)·r (150 for SD 1.5 at a = 100, b = 50, r = 1). */
export function trainableCount(layer: LidbLayerShape, a: number, b: number, r: number): number {
  return r * Math.min(a, layer.inFeatures) + Math.min(b, layer.outFeatures) * r;
}
