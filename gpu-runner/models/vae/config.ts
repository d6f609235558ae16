// diffusers `AutoencoderKL` config as written to `vae/config.json` (v0.24 keys and defaults).
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** SD 1.5's latent scale (Rombach et al., LDM §4.3 / the published vae/config.json); pipelines multiply latents by it. */
export const SD15_VAE_SCALING_FACTOR = 0.18215;

export const vaeConfigSchema = z
  .object({
    _class_name: z.literal('AutoencoderKL').optional(),
    in_channels: positiveInt.default(3),
    out_channels: positiveInt.default(3),
    down_block_types: z.array(z.literal('DownEncoderBlock2D')).min(1),
    up_block_types: z.array(z.literal('UpDecoderBlock2D')).min(1),
    block_out_channels: z.array(positiveInt).min(1),
    layers_per_block: positiveInt.default(1),
    act_fn: z.enum(['silu', 'swish']).default('silu'),
    latent_channels: positiveInt.default(4),
    norm_num_groups: positiveInt.default(32),
    sample_size: positiveInt.optional(),
    scaling_factor: z.number().positive().default(SD15_VAE_SCALING_FACTOR),
    // Only a newer diffusers writes these; both default to the SD 1.5 behaviour.
    use_quant_conv: z.literal(true).default(true),
    use_post_quant_conv: z.literal(true).default(true),
    mid_block_add_attention: z.literal(true).default(true),
  })
  .superRefine((c, ctx) => {
    const blocks = c.block_out_channels.length;
    if (c.down_block_types.length !== blocks || c.up_block_types.length !== blocks) {
      ctx.addIssue({ code: 'custom', path: ['block_out_channels'], message: `${blocks} block_out_channels need as many down and up block types` });
    }
    for (const channels of c.block_out_channels) {
      if (channels % c.norm_num_groups !== 0) {
        ctx.addIssue({ code: 'custom', path: ['norm_num_groups'], message: `${channels} channels do not split into ${c.norm_num_groups} groups` });
      }
    }
  });

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  latentChannels: number;
  normNumGroups: number;
  scalingFactor: number;
}

export function parseVaeConfig(json: unknown): VaeConfig {
  const parsed = vaeConfigSchema.safeParse(json);
  if (!parsed.success) throw new Error(`vae config: ${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  return {
    inChannels: c.in_channels,
    outChannels: c.out_channels,
    blockOutChannels: c.block_out_channels,
    layersPerBlock: c.layers_per_block,
    latentChannels: c.latent_channels,
    normNumGroups: c.norm_num_groups,
    scalingFactor: c.scaling_factor,
  };
}
