// ResnetBlock2D (diffusers v0.24 resnet.py, `time_embedding_norm="default"`, pre-norm):
// norm1 → SiLU → conv1 (+ time_emb_proj(SiLU(temb)) broadcast over H×W) → norm2 → SiLU → conv2,
// plus the input (through a 1×1 `conv_shortcut` when the widths differ), divided by `output_scale_factor`.
import type { InventoryBuilder } from '../inventory.ts';

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
