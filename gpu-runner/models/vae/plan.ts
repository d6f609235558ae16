// AutoencoderKL's module tree from its config, mirroring diffusers v0.24 vae.py (`Encoder`, `Decoder`),
// unet_2d_blocks.py (`DownEncoderBlock2D`, `UpDecoderBlock2D`, `UNetMidBlock2D`) and autoencoder_kl.py.
import type { ResnetPlan } from '../blocks/resnet.ts';
import type { VaeConfig } from './config.ts';

/** vae.py passes `resnet_eps=1e-6` to every block and uses 1e-6 for conv_norm_out (unlike the UNet's 1e-5). */
export const VAE_NORM_EPS = 1e-6;

/** The mid-block self-attention: one head as wide as the channels, its own GroupNorm, biased projections, residual. */
export interface VaeAttentionPlan {
  path: string;
  channels: number;
  groups: number;
  eps: number;
}

export interface VaeMidBlockPlan {
  path: string;
  resnets: [ResnetPlan, ResnetPlan];
  attention: VaeAttentionPlan;
}

export interface VaeEncoderBlockPlan {
  path: string;
  resnets: ResnetPlan[];
  /** Pad (0,1,0,1) then a 3×3 stride-2 conv without padding (`downsample_padding=0`). */
  downsampler: { path: string; channels: number } | null;
}

export interface VaeDecoderBlockPlan {
  path: string;
  resnets: ResnetPlan[];
  /** Nearest ×2 then a 3×3 conv. */
  upsampler: { path: string; channels: number } | null;
}

export interface VaePlan {
  config: VaeConfig;
  encoder: { downBlocks: VaeEncoderBlockPlan[]; midBlock: VaeMidBlockPlan; momentsChannels: number };
  decoder: { midBlock: VaeMidBlockPlan; upBlocks: VaeDecoderBlockPlan[] };
}

function resnet(path: string, inChannels: number, outChannels: number, groups: number): ResnetPlan {
  return { path, inChannels, outChannels, tembChannels: null, groups, eps: VAE_NORM_EPS, outputScaleFactor: 1 };
}

function midBlock(path: string, channels: number, groups: number): VaeMidBlockPlan {
  return {
    path,
    resnets: [resnet(`${path}.resnets.0`, channels, channels, groups), resnet(`${path}.resnets.1`, channels, channels, groups)],
    attention: { path: `${path}.attentions.0`, channels, groups, eps: VAE_NORM_EPS },
  };
}

export function planVae(config: VaeConfig): VaePlan {
  const channels = config.blockOutChannels;
  const blocks = channels.length;
  const groups = config.normNumGroups;
  const last = channels[blocks - 1]!;

  const downBlocks: VaeEncoderBlockPlan[] = [];
  let outputChannel = channels[0]!;
  for (let i = 0; i < blocks; i++) {
    const inputChannel = outputChannel;
    outputChannel = channels[i]!;
    const path = `encoder.down_blocks.${i}`;
    const resnets = Array.from({ length: config.layersPerBlock }, (_, j) =>
      resnet(`${path}.resnets.${j}`, j === 0 ? inputChannel : outputChannel, outputChannel, groups),
    );
    downBlocks.push({ path, resnets, downsampler: i === blocks - 1 ? null : { path: `${path}.downsamplers.0.conv`, channels: outputChannel } });
  }

  const reversed = [...channels].reverse();
  const upBlocks: VaeDecoderBlockPlan[] = [];
  outputChannel = reversed[0]!;
  for (let i = 0; i < blocks; i++) {
    const prevOutputChannel = outputChannel;
    outputChannel = reversed[i]!;
    const path = `decoder.up_blocks.${i}`;
    // The decoder has one more resnet per block than the encoder (vae.py: `num_layers=layers_per_block + 1`).
    const resnets = Array.from({ length: config.layersPerBlock + 1 }, (_, j) =>
      resnet(`${path}.resnets.${j}`, j === 0 ? prevOutputChannel : outputChannel, outputChannel, groups),
    );
    upBlocks.push({ path, resnets, upsampler: i === blocks - 1 ? null : { path: `${path}.upsamplers.0.conv`, channels: outputChannel } });
  }

  return {
    config,
    // `double_z`: the encoder emits mean and log-variance stacked on the channel axis.
    encoder: { downBlocks, midBlock: midBlock('encoder.mid_block', last, groups), momentsChannels: 2 * config.latentChannels },
    decoder: { midBlock: midBlock('decoder.mid_block', last, groups), upBlocks },
  };
}
