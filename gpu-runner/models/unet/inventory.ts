// UNet2DConditionModel parameter inventory (diffusers checkpoint names), derived from the plan.
import { type AdaptableLinear, InventoryBuilder, type ParameterSpec } from '../inventory.ts';
import { resnetInventory } from '../blocks/resnet.ts';
import { transformerInventory, transformerLinears } from '../blocks/transformer.ts';
import type { UnetPlan } from './plan.ts';

export function unetInventory(plan: UnetPlan): ParameterSpec[] {
  const { config } = plan;
  const inventory = new InventoryBuilder();
  inventory.conv2d('conv_in', config.inChannels, config.blockOutChannels[0]!, config.convInKernel);
  inventory.linear('time_embedding.linear_1', plan.timeProjDim, plan.timeEmbedDim);
  inventory.linear('time_embedding.linear_2', plan.timeEmbedDim, plan.timeEmbedDim);
  for (const block of plan.downBlocks) {
    block.attentions.forEach((attention) => transformerInventory(inventory, attention));
    block.resnets.forEach((resnet) => resnetInventory(inventory, resnet));
    if (block.downsampler) inventory.conv2d(block.downsampler.path, block.downsampler.channels, block.downsampler.channels, 3);
  }
  for (const block of plan.upBlocks) {
    block.attentions.forEach((attention) => transformerInventory(inventory, attention));
    block.resnets.forEach((resnet) => resnetInventory(inventory, resnet));
    if (block.upsampler) inventory.conv2d(block.upsampler.path, block.upsampler.channels, block.upsampler.channels, 3);
  }
  plan.midBlock.attentions.forEach((attention) => transformerInventory(inventory, attention));
  plan.midBlock.resnets.forEach((resnet) => resnetInventory(inventory, resnet));
  inventory.norm('conv_norm_out', config.blockOutChannels[0]!);
  inventory.conv2d('conv_out', config.blockOutChannels[0]!, config.outChannels, config.convOutKernel);
  return inventory.build();
}

/**
 * Every attention projection (attn1/attn2 × to_q, to_k, to_v, to_out.0): the LoRA/LiDB targets, in state-dict order
 * (down, up, mid: diffusers registers `mid_block` after `up_blocks`).
 */
export function unetAttentionLinears(plan: UnetPlan): AdaptableLinear[] {
  const transformers = [
    ...plan.downBlocks.flatMap((block) => block.attentions),
    ...plan.upBlocks.flatMap((block) => block.attentions),
    ...plan.midBlock.attentions,
  ];
  return transformers.flatMap(transformerLinears);
}
