// The UNet's module tree derived from its config: every block with its channels, heads and checkpoint path, mirroring
// diffusers v0.24 `UNet2DConditionModel.__init__` (unet_2d_condition.py) and the block classes of unet_2d_blocks.py.
// The inventory and the graph builder both walk this one plan, so names and shapes cannot drift apart.
import type { ResnetPlan } from '../blocks/resnet.ts';
import { FEED_FORWARD_MULT, type Transformer2DPlan, type TransformerBlockPlan } from '../blocks/transformer.ts';
import type { UnetConfig, UnetDownBlockType, UnetUpBlockType } from './config.ts';

export interface UnetDownBlockPlan {
  path: string;
  type: UnetDownBlockType;
  resnets: ResnetPlan[];
  attentions: Transformer2DPlan[];
  /** Stride-2 3×3 conv; diffusers calls it `downsamplers.0.conv`. */
  downsampler: { path: string; channels: number; padding: number } | null;
}

export interface UnetUpBlockPlan {
  path: string;
  type: UnetUpBlockType;
  resnets: ResnetPlan[];
  attentions: Transformer2DPlan[];
  /** Nearest ×2 (or to the skip's size) then 3×3 conv: `upsamplers.0.conv`. */
  upsampler: { path: string; channels: number } | null;
}

export interface UnetMidBlockPlan {
  path: string;
  resnets: ResnetPlan[];
  attentions: Transformer2DPlan[];
}

export interface UnetPlan {
  config: UnetConfig;
  timeProjDim: number;
  timeEmbedDim: number;
  downBlocks: UnetDownBlockPlan[];
  midBlock: UnetMidBlockPlan;
  upBlocks: UnetUpBlockPlan[];
}

function transformerPlan(
  path: string,
  channels: number,
  heads: number,
  layers: number,
  crossAttentionDim: number,
  onlyCrossAttention: boolean,
  config: UnetConfig,
): Transformer2DPlan {
  // diffusers passes `out_channels // num_attention_heads` as the head dim, so inner = heads × head_dim.
  const headDim = Math.floor(channels / heads);
  if (headDim < 1) throw new Error(`unet: ${path} has ${channels} channels, fewer than its ${heads} heads`);
  const innerDim = heads * headDim;
  const blocks: TransformerBlockPlan[] = [];
  for (let i = 0; i < layers; i++) {
    const blockPath = `${path}.transformer_blocks.${i}`;
    blocks.push({
      path: blockPath,
      dim: innerDim,
      attn1: {
        path: `${blockPath}.attn1`,
        queryDim: innerDim,
        kvDim: onlyCrossAttention ? crossAttentionDim : innerDim,
        heads,
        headDim,
        cross: onlyCrossAttention,
      },
      attn2: { path: `${blockPath}.attn2`, queryDim: innerDim, kvDim: crossAttentionDim, heads, headDim, cross: true },
      ffInner: innerDim * FEED_FORWARD_MULT,
    });
  }
  return {
    path,
    inChannels: channels,
    innerDim,
    groups: config.normNumGroups,
    useLinearProjection: config.useLinearProjection,
    blocks,
  };
}

function resnetPlan(path: string, inChannels: number, outChannels: number, config: UnetConfig, scale = 1): ResnetPlan {
  return {
    path,
    inChannels,
    outChannels,
    tembChannels: config.timeEmbedDim,
    groups: config.normNumGroups,
    eps: config.normEps,
    outputScaleFactor: scale,
  };
}

export function planUnet(config: UnetConfig): UnetPlan {
  const channels = config.blockOutChannels;
  const blocks = channels.length;
  if (config.downBlockTypes.length !== blocks || config.upBlockTypes.length !== blocks) {
    throw new Error(`unet: ${blocks} block_out_channels need as many down and up block types`);
  }
  const downBlocks: UnetDownBlockPlan[] = [];
  let outputChannel = channels[0]!;
  for (let i = 0; i < blocks; i++) {
    const inputChannel = outputChannel;
    outputChannel = channels[i]!;
    const path = `down_blocks.${i}`;
    const type = config.downBlockTypes[i]!;
    const resnets: ResnetPlan[] = [];
    const attentions: Transformer2DPlan[] = [];
    for (let j = 0; j < config.layersPerBlock[i]!; j++) {
      resnets.push(resnetPlan(`${path}.resnets.${j}`, j === 0 ? inputChannel : outputChannel, outputChannel, config));
      if (type === 'CrossAttnDownBlock2D') {
        attentions.push(
          transformerPlan(
            `${path}.attentions.${j}`,
            outputChannel,
            config.numAttentionHeads[i]!,
            config.transformerLayersPerBlock[i]!,
            config.crossAttentionDim[i]!,
            config.onlyCrossAttention[i]!,
            config,
          ),
        );
      }
    }
    const isFinal = i === blocks - 1;
    downBlocks.push({
      path,
      type,
      resnets,
      attentions,
      downsampler: isFinal ? null : { path: `${path}.downsamplers.0.conv`, channels: outputChannel, padding: config.downsamplePadding },
    });
  }

  const last = channels[blocks - 1]!;
  const midBlock: UnetMidBlockPlan = {
    path: 'mid_block',
    resnets: [0, 1].map((j) => resnetPlan(`mid_block.resnets.${j}`, last, last, config, config.midBlockScaleFactor)),
    attentions: [
      transformerPlan(
        'mid_block.attentions.0',
        last,
        config.numAttentionHeads[blocks - 1]!,
        config.transformerLayersPerBlock[blocks - 1]!,
        config.crossAttentionDim[blocks - 1]!,
        false,
        config,
      ),
    ],
  };

  // Up path: per-block options are reversed, and each resnet's input is the running width plus one skip connection.
  const reversedChannels = [...channels].reverse();
  const reversedHeads = [...config.numAttentionHeads].reverse();
  const reversedLayers = [...config.layersPerBlock].reverse();
  const reversedCross = [...config.crossAttentionDim].reverse();
  const reversedTransformerLayers = [...config.transformerLayersPerBlock].reverse();
  const reversedOnlyCross = [...config.onlyCrossAttention].reverse();
  const upBlocks: UnetUpBlockPlan[] = [];
  outputChannel = reversedChannels[0]!;
  for (let i = 0; i < blocks; i++) {
    const prevOutputChannel = outputChannel;
    outputChannel = reversedChannels[i]!;
    const inputChannel = reversedChannels[Math.min(i + 1, blocks - 1)]!;
    const path = `up_blocks.${i}`;
    const type = config.upBlockTypes[i]!;
    const numLayers = reversedLayers[i]! + 1;
    const resnets: ResnetPlan[] = [];
    const attentions: Transformer2DPlan[] = [];
    for (let j = 0; j < numLayers; j++) {
      const skipChannels = j === numLayers - 1 ? inputChannel : outputChannel;
      const resnetIn = j === 0 ? prevOutputChannel : outputChannel;
      resnets.push(resnetPlan(`${path}.resnets.${j}`, resnetIn + skipChannels, outputChannel, config));
      if (type === 'CrossAttnUpBlock2D') {
        attentions.push(
          transformerPlan(
            `${path}.attentions.${j}`,
            outputChannel,
            reversedHeads[i]!,
            reversedTransformerLayers[i]!,
            reversedCross[i]!,
            reversedOnlyCross[i]!,
            config,
          ),
        );
      }
    }
    const isFinal = i === blocks - 1;
    upBlocks.push({
      path,
      type,
      resnets,
      attentions,
      upsampler: isFinal ? null : { path: `${path}.upsamplers.0.conv`, channels: outputChannel },
    });
  }

  return { config, timeProjDim: channels[0]!, timeEmbedDim: config.timeEmbedDim, downBlocks, midBlock, upBlocks };
}
