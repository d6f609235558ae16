// Transformer2DModel with BasicTransformerBlocks (diffusers v0.24 transformer_2d.py, attention.py):
// GroupNorm → proj_in (1×1 conv, or linear after flattening when use_linear_projection) → blocks → proj_out → + input.
// Each block: x += attn1(norm1(x)); x += attn2(norm2(x), text); x += ff(norm3(x)), ff = GEGLU(4·dim) → linear.
import type { AdaptableLinear, InventoryBuilder } from '../inventory.ts';

/** Transformer2DModel hard-codes its GroupNorm eps (transformer_2d.py), unlike the ResNets' `norm_eps`. */
export const TRANSFORMER_GROUP_NORM_EPS = 1e-6;
/** BasicTransformerBlock's LayerNorms keep the default `norm_eps` 1e-5 (attention.py); the UNet never overrides it. */
export const TRANSFORMER_LAYER_NORM_EPS = 1e-5;
/** FeedForward `mult` (attention.py): the GEGLU hidden width is 4 × dim. */
export const FEED_FORWARD_MULT = 4;

export interface AttentionPlan {
  path: string;
  queryDim: number;
  /** Width of the keys/values source: queryDim for self-attention, the text width for cross-attention. */
  kvDim: number;
  heads: number;
  headDim: number;
  /** True when keys/values come from `encoder_hidden_states` (attn2, or attn1 under only_cross_attention). */
  cross: boolean;
}

export interface TransformerBlockPlan {
  path: string;
  dim: number;
  attn1: AttentionPlan;
  attn2: AttentionPlan;
  ffInner: number;
}

export interface Transformer2DPlan {
  path: string;
  inChannels: number;
  innerDim: number;
  groups: number;
  useLinearProjection: boolean;
  blocks: TransformerBlockPlan[];
}

/** The projections of diffusers' `Attention` (attention_processor.py): q/k/v without bias (attention_bias false), out with. */
export const ATTENTION_PROJECTIONS = ['to_q', 'to_k', 'to_v', 'to_out.0'] as const;

export function attentionLinears(plan: AttentionPlan, which: 'attn1' | 'attn2'): AdaptableLinear[] {
  const inner = plan.heads * plan.headDim;
  return [
    { name: `${plan.path}.to_q`, inFeatures: plan.queryDim, outFeatures: inner, bias: false, kind: `${which}.to_q` },
    { name: `${plan.path}.to_k`, inFeatures: plan.kvDim, outFeatures: inner, bias: false, kind: `${which}.to_k` },
    { name: `${plan.path}.to_v`, inFeatures: plan.kvDim, outFeatures: inner, bias: false, kind: `${which}.to_v` },
    { name: `${plan.path}.to_out.0`, inFeatures: inner, outFeatures: plan.queryDim, bias: true, kind: `${which}.to_out.0` },
  ];
}

export function transformerLinears(plan: Transformer2DPlan): AdaptableLinear[] {
  return plan.blocks.flatMap((block) => [...attentionLinears(block.attn1, 'attn1'), ...attentionLinears(block.attn2, 'attn2')]);
}

export function transformerInventory(inventory: InventoryBuilder, plan: Transformer2DPlan): void {
  inventory.norm(`${plan.path}.norm`, plan.inChannels);
  if (plan.useLinearProjection) inventory.linear(`${plan.path}.proj_in`, plan.inChannels, plan.innerDim);
  else inventory.conv2d(`${plan.path}.proj_in`, plan.inChannels, plan.innerDim, 1);
  for (const block of plan.blocks) {
    inventory.norm(`${block.path}.norm1`, block.dim);
    for (const linear of attentionLinears(block.attn1, 'attn1')) inventory.linear(linear.name, linear.inFeatures, linear.outFeatures, linear.bias);
    inventory.norm(`${block.path}.norm2`, block.dim);
    for (const linear of attentionLinears(block.attn2, 'attn2')) inventory.linear(linear.name, linear.inFeatures, linear.outFeatures, linear.bias);
    inventory.norm(`${block.path}.norm3`, block.dim);
    // GEGLU: one projection to 2 × inner, split into value and gate.
    inventory.linear(`${block.path}.ff.net.0.proj`, block.dim, 2 * block.ffInner);
    inventory.linear(`${block.path}.ff.net.2`, block.ffInner, block.dim);
  }
  if (plan.useLinearProjection) inventory.linear(`${plan.path}.proj_out`, plan.innerDim, plan.inChannels);
  else inventory.conv2d(`${plan.path}.proj_out`, plan.innerDim, plan.inChannels, 1);
}
