// ResnetBlock2D (diffusers v0.24 resnet.py, `time_embedding_norm="default"`, pre-norm):
// norm1 → SiLU → conv1 (+ time_emb_proj(SiLU(temb)) broadcast over H×W) → norm2 → SiLU → conv2,
// plus the input (through a 1×1 `conv_shortcut` when the widths differ), divided by `output_scale_factor`.
import { add, div, reshape, silu, type Value } from '../../onnx/index.ts';
import type { InventoryBuilder } from '../inventory.ts';
import type { ModelBuilder } from '../layers.ts';

export interface ResnetPlan {
  path: string;
  inChannels: number;
  outChannels: number;
  /** Width of the time embedding fed to `time_emb_proj`; null when the block has none (VAE). */
  tembChannels: number | null;
  groups: number;
  eps: number;
  outputScaleFactor: number;
}

export function resnetHasShortcut(plan: ResnetPlan): boolean {
  return plan.inChannels !== plan.outChannels;
}

export function resnetInventory(inventory: InventoryBuilder, plan: ResnetPlan): void {
  inventory.norm(`${plan.path}.norm1`, plan.inChannels);
  inventory.conv2d(`${plan.path}.conv1`, plan.inChannels, plan.outChannels, 3);
  if (plan.tembChannels !== null) inventory.linear(`${plan.path}.time_emb_proj`, plan.tembChannels, plan.outChannels);
  inventory.norm(`${plan.path}.norm2`, plan.outChannels);
  inventory.conv2d(`${plan.path}.conv2`, plan.outChannels, plan.outChannels, 3);
  if (resnetHasShortcut(plan)) inventory.conv2d(`${plan.path}.conv_shortcut`, plan.inChannels, plan.outChannels, 1);
}

/**
 * Emits the block. `tembActivated` is SiLU(time embedding) [B, tembChannels] (shared by every resnet: diffusers
 * applies the same SiLU in each), or undefined for the VAE.
 */
export function buildResnet(mb: ModelBuilder, plan: ResnetPlan, x: Value, tembActivated?: Value): Value {
  let h = silu(mb.groupNorm(`${plan.path}.norm1`, x, plan.groups, plan.eps));
  h = mb.conv2d(`${plan.path}.conv1`, h, plan.outChannels, 3, { padding: 1 });
  if (plan.tembChannels !== null) {
    if (!tembActivated) throw new Error(`${plan.path}: needs the time embedding`);
    const projected = mb.linear(
      { name: `${plan.path}.time_emb_proj`, inFeatures: plan.tembChannels, outFeatures: plan.outChannels, bias: true, kind: 'time_emb_proj' },
      tembActivated,
    );
    const batch = projected.staticShape[0]!;
    h = add(h, reshape(projected, [batch, plan.outChannels, 1, 1]));
  }
  h = silu(mb.groupNorm(`${plan.path}.norm2`, h, plan.groups, plan.eps));
  h = mb.conv2d(`${plan.path}.conv2`, h, plan.outChannels, 3, { padding: 1 });
  const shortcut = resnetHasShortcut(plan) ? mb.conv2d(`${plan.path}.conv_shortcut`, x, plan.outChannels, 1) : x;
  const sum = add(shortcut, h);
  return plan.outputScaleFactor === 1 ? sum : div(sum, plan.outputScaleFactor);
}
