// Transformer2DModel with BasicTransformerBlocks (diffusers v0.24 transformer_2d.py, attention.py):
// GroupNorm → proj_in (1×1 conv, or linear after flattening when use_linear_projection) → blocks → proj_out → + input.
// Each block: x += attn1(norm1(x)); x += attn2(norm2(x), text); x += ff(norm3(x)), ff = GEGLU(4·dim) → linear.
import { add, attention, geglu, reshape, transpose, type Value } from '../../onnx/index.ts';
import type { AdaptableLinear, InventoryBuilder } from '../inventory.ts';
import type { ModelBuilder } from '../layers.ts';

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

function attentionLayer(mb: ModelBuilder, plan: AttentionPlan, which: 'attn1' | 'attn2', x: Value, context: Value): Value {
  const [q, k, v, out] = attentionLinears(plan, which) as [AdaptableLinear, AdaptableLinear, AdaptableLinear, AdaptableLinear];
  const source = plan.cross ? context : x;
  const attended = attention(mb.linear(q, x), mb.linear(k, source), mb.linear(v, source), { heads: plan.heads });
  return mb.linear(out, attended);
}

function buildTransformerBlock(mb: ModelBuilder, plan: TransformerBlockPlan, x: Value, context: Value): Value {
  let h = add(attentionLayer(mb, plan.attn1, 'attn1', mb.layerNorm(`${plan.path}.norm1`, x, TRANSFORMER_LAYER_NORM_EPS), context), x);
  h = add(attentionLayer(mb, plan.attn2, 'attn2', mb.layerNorm(`${plan.path}.norm2`, h, TRANSFORMER_LAYER_NORM_EPS), context), h);
  const normed = mb.layerNorm(`${plan.path}.norm3`, h, TRANSFORMER_LAYER_NORM_EPS);
  const projected = mb.linear(
    { name: `${plan.path}.ff.net.0.proj`, inFeatures: plan.dim, outFeatures: 2 * plan.ffInner, bias: true, kind: 'ff.net.0.proj' },
    normed,
  );
  const ff = mb.linear({ name: `${plan.path}.ff.net.2`, inFeatures: plan.ffInner, outFeatures: plan.dim, bias: true, kind: 'ff.net.2' }, geglu(projected));
  return add(ff, h);
}

/** Emits a Transformer2DModel on NCHW `x` with text `context` [B, S, crossAttentionDim]. */
export function buildTransformer2D(mb: ModelBuilder, plan: Transformer2DPlan, x: Value, context: Value): Value {
  const [b, c, height, width] = x.staticShape as [number, number, number, number];
  const tokens = height * width;
  const normed = mb.groupNorm(`${plan.path}.norm`, x, plan.groups, TRANSFORMER_GROUP_NORM_EPS);
  const toTokens = (v: Value, channels: number) => reshape(transpose(v, [0, 2, 3, 1]), [b, tokens, channels]);
  const toImage = (v: Value, channels: number) => transpose(reshape(v, [b, height, width, channels]), [0, 3, 1, 2]);
  const projIn = { name: `${plan.path}.proj_in`, inFeatures: c, outFeatures: plan.innerDim, bias: true, kind: 'proj_in' };
  const projOut = { name: `${plan.path}.proj_out`, inFeatures: plan.innerDim, outFeatures: c, bias: true, kind: 'proj_out' };
  let h = plan.useLinearProjection
    ? mb.linear(projIn, toTokens(normed, c))
    : toTokens(mb.conv2d(projIn.name, normed, plan.innerDim, 1), plan.innerDim);
  for (const block of plan.blocks) h = buildTransformerBlock(mb, block, h, context);
  const out = plan.useLinearProjection ? toImage(mb.linear(projOut, h), c) : mb.conv2d(projOut.name, toImage(h, plan.innerDim), c, 1);
  return add(out, x);
}
