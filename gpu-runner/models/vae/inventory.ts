// AutoencoderKL parameter inventory (diffusers names), plus the legacy attention names older checkpoints use.
import { InventoryBuilder, type ParameterSpec } from '../inventory.ts';
import { resnetInventory } from '../blocks/resnet.ts';
import type { VaeMidBlockPlan, VaePlan } from './plan.ts';

function midBlockInventory(inventory: InventoryBuilder, mid: VaeMidBlockPlan): void {
  const { path, channels } = mid.attention;
  inventory.norm(`${path}.group_norm`, channels);
  for (const proj of ['to_q', 'to_k', 'to_v', 'to_out.0']) inventory.linear(`${path}.${proj}`, channels, channels);
  mid.resnets.forEach((plan) => resnetInventory(inventory, plan));
}

export function vaeInventory(plan: VaePlan): ParameterSpec[] {
  const { config } = plan;
  const channels = config.blockOutChannels;
  const first = channels[0]!;
  const last = channels[channels.length - 1]!;
  const inventory = new InventoryBuilder();

  inventory.conv2d('encoder.conv_in', config.inChannels, first, 3);
  for (const block of plan.encoder.downBlocks) {
    block.resnets.forEach((resnet) => resnetInventory(inventory, resnet));
    if (block.downsampler) inventory.conv2d(block.downsampler.path, block.downsampler.channels, block.downsampler.channels, 3);
  }
  midBlockInventory(inventory, plan.encoder.midBlock);
  inventory.norm('encoder.conv_norm_out', last);
  inventory.conv2d('encoder.conv_out', last, plan.encoder.momentsChannels, 3);

  inventory.conv2d('decoder.conv_in', config.latentChannels, last, 3);
  for (const block of plan.decoder.upBlocks) {
    block.resnets.forEach((resnet) => resnetInventory(inventory, resnet));
    if (block.upsampler) inventory.conv2d(block.upsampler.path, block.upsampler.channels, block.upsampler.channels, 3);
  }
  midBlockInventory(inventory, plan.decoder.midBlock);
  inventory.norm('decoder.conv_norm_out', first);
  inventory.conv2d('decoder.conv_out', first, config.outChannels, 3);

  inventory.conv2d('quant_conv', plan.encoder.momentsChannels, plan.encoder.momentsChannels, 1);
  inventory.conv2d('post_quant_conv', config.latentChannels, config.latentChannels, 1);
  return inventory.build();
}

/**
 * diffusers < 0.14 `AttentionBlock` names for the VAE mid-block attention (`query/key/value/proj_attn`), which some SD 1.5
 * VAE files still use; diffusers renames them on load (modeling_utils `_convert_deprecated_attention_blocks`).
 */
const LEGACY_ATTENTION_NAMES: Record<string, string> = {
  query: 'to_q',
  key: 'to_k',
  value: 'to_v',
  proj_attn: 'to_out.0',
};

/** Maps a legacy VAE attention key to its current name; other keys pass through unchanged. */
export function renameLegacyVaeKey(name: string): string {
  const match = /^((?:encoder|decoder)\.mid_block\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$/.exec(name);
  if (!match) return name;
  return `${match[1]}.${LEGACY_ATTENTION_NAMES[match[2]!]}.${match[3]}`;
}
