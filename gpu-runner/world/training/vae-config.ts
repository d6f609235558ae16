// The world's VAE: AutoencoderKL with SD 1.5's topology (DownEncoderBlock2D / UpDecoderBlock2D, a mid-block with one
// attention, 4 latent channels) at tiny widths, for the world's 32 px renders. Three levels make it ×4, so latents are
// 8 × 8 × 4, the latent size the tiny pack's UNet works at. A feasibility run (docs/world.md): a 64 px world with a ×4
// VAE was still blurry after 11 minutes; 32 px with large features costs ≈ 4× less per sample, so the same CPU time
// buys 4× the samples (measured by `npm run world:train-vae -- --measure`).
import { parseVaeConfig, type VaeConfig } from '../../models/vae/config.ts';
import { planVae, type VaePlan } from '../../models/vae/plan.ts';

export const WORLD_IMAGE_SIZE = 32;

/** diffusers `vae/config.json`; `scaling_factor` is replaced by the measured 1 / std(latents) when the pack is written. */
export const WORLD_VAE_CONFIG = {
  _class_name: 'AutoencoderKL',
  _diffusers_version: '0.24.0',
  act_fn: 'silu',
  block_out_channels: [32, 64, 64],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  force_upcast: true,
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 1,
  norm_num_groups: 8,
  out_channels: 3,
  sample_size: WORLD_IMAGE_SIZE,
  scaling_factor: 1,
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
} as const;

export type VaeConfigJson = Record<string, unknown> & { block_out_channels: readonly number[]; scaling_factor: number };

export interface WorldVae {
  readonly json: VaeConfigJson;
  readonly config: VaeConfig;
  readonly plan: VaePlan;
  /** Image side in pixels and latent side (image / 2^(levels − 1)). */
  readonly imageSize: number;
  readonly latentSize: number;
}

export function worldVae(json: VaeConfigJson = WORLD_VAE_CONFIG, imageSize = WORLD_IMAGE_SIZE): WorldVae {
  const config = parseVaeConfig(json);
  const factor = 2 ** (config.blockOutChannels.length - 1);
  if (imageSize % factor !== 0) throw new Error(`a ×${factor} VAE needs images whose side is a multiple of ${factor}, got ${imageSize}`);
  return { json, config, plan: planVae(config), imageSize, latentSize: imageSize / factor };
}
