// UNet2DConditionModel config, as diffusers' `save_pretrained` writes `unet/config.json` (diffusers v0.24 keys and
// defaults). Only the SD 1.x family topology is supported; any option that would change the topology in a way we do not
// build is rejected with a message naming it, rather than silently ignored.
import { z } from 'zod';

export const UNET_DOWN_BLOCK_TYPES = ['CrossAttnDownBlock2D', 'DownBlock2D'] as const;
export const UNET_UP_BLOCK_TYPES = ['CrossAttnUpBlock2D', 'UpBlock2D'] as const;
export type UnetDownBlockType = (typeof UNET_DOWN_BLOCK_TYPES)[number];
export type UnetUpBlockType = (typeof UNET_UP_BLOCK_TYPES)[number];

const positiveInt = z.number().int().positive();
const intOrList = z.union([positiveInt, z.array(positiveInt).min(1)]);

/** A key that must be absent, null or the given default: we do not build the variant it selects. */
function unsupported<T extends z.ZodType>(schema: T, key: string) {
  return schema.optional().nullable().refine((value) => value === undefined || value === null, {
    message: `${key} is not supported (only the SD 1.x UNet topology is built)`,
  });
}

export const unetConfigSchema = z
  .object({
    _class_name: z.literal('UNet2DConditionModel').optional(),
    sample_size: z.union([positiveInt, z.array(positiveInt)]).nullable().optional(),
    in_channels: positiveInt.default(4),
    out_channels: positiveInt.default(4),
    center_input_sample: z.boolean().default(false),
    flip_sin_to_cos: z.boolean().default(true),
    freq_shift: z.number().default(0),
    down_block_types: z.array(z.enum(UNET_DOWN_BLOCK_TYPES)).min(1),
    mid_block_type: z.literal('UNetMidBlock2DCrossAttn').default('UNetMidBlock2DCrossAttn'),
    up_block_types: z.array(z.enum(UNET_UP_BLOCK_TYPES)).min(1),
    only_cross_attention: z.union([z.boolean(), z.array(z.boolean())]).default(false),
    block_out_channels: z.array(positiveInt).min(1),
    layers_per_block: intOrList.default(2),
    downsample_padding: z.number().int().nonnegative().default(1),
    mid_block_scale_factor: z.number().positive().default(1),
    act_fn: z.enum(['silu', 'swish']).default('silu'),
    norm_num_groups: positiveInt.default(32),
    norm_eps: z.number().positive().default(1e-5),
    cross_attention_dim: intOrList.default(1280),
    transformer_layers_per_block: intOrList.default(1),
    attention_head_dim: intOrList.default(8),
    num_attention_heads: intOrList.nullable().optional(),
    use_linear_projection: z.boolean().default(false),
    // Upcasting only matters in fp16; we always compute attention in fp32.
    upcast_attention: z.boolean().default(false),
    conv_in_kernel: positiveInt.default(3),
    conv_out_kernel: positiveInt.default(3),
    time_embedding_type: z.literal('positional').default('positional'),
    time_embedding_dim: positiveInt.nullable().optional(),
    resnet_time_scale_shift: z.literal('default').default('default'),
    resnet_skip_time_act: z.literal(false).default(false),
    dual_cross_attention: z.literal(false).default(false),
    attention_type: z.literal('default').default('default'),
    // Only read by UNetMidBlock2DSimpleCrossAttn; UNetMidBlock2DCrossAttn's self-attention is always self-attention.
    mid_block_only_cross_attention: z.boolean().nullable().optional(),
    class_embed_type: unsupported(z.string(), 'class_embed_type'),
    num_class_embeds: unsupported(z.number(), 'num_class_embeds'),
    addition_embed_type: unsupported(z.string(), 'addition_embed_type'),
    encoder_hid_dim: unsupported(z.number(), 'encoder_hid_dim'),
    encoder_hid_dim_type: unsupported(z.string(), 'encoder_hid_dim_type'),
    time_cond_proj_dim: unsupported(z.number(), 'time_cond_proj_dim'),
    time_embedding_act_fn: unsupported(z.string(), 'time_embedding_act_fn'),
    timestep_post_act: unsupported(z.string(), 'timestep_post_act'),
    cross_attention_norm: unsupported(z.string(), 'cross_attention_norm'),
    reverse_transformer_layers_per_block: unsupported(z.unknown(), 'reverse_transformer_layers_per_block'),
  })
  .superRefine((config, ctx) => {
    const blocks = config.block_out_channels.length;
    const perBlock: [string, unknown][] = [
      ['down_block_types', config.down_block_types],
      ['up_block_types', config.up_block_types],
      ['only_cross_attention', config.only_cross_attention],
      ['layers_per_block', config.layers_per_block],
      ['cross_attention_dim', config.cross_attention_dim],
      ['transformer_layers_per_block', config.transformer_layers_per_block],
      ['attention_head_dim', config.attention_head_dim],
      ['num_attention_heads', config.num_attention_heads],
    ];
    for (const [key, value] of perBlock) {
      if (Array.isArray(value) && value.length !== blocks) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${key} has ${value.length} entries, block_out_channels has ${blocks}` });
      }
    }
    for (const channels of config.block_out_channels) {
      if (channels % config.norm_num_groups !== 0) {
        ctx.addIssue({ code: 'custom', path: ['norm_num_groups'], message: `${channels} channels do not split into ${config.norm_num_groups} groups` });
      }
    }
  });

export type UnetConfigJson = z.input<typeof unetConfigSchema>;

/** The config with every per-block option expanded to one entry per block (down-path order). */
export interface UnetConfig {
  sampleSize: number | null;
  inChannels: number;
  outChannels: number;
  centerInputSample: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  downBlockTypes: UnetDownBlockType[];
  upBlockTypes: UnetUpBlockType[];
  blockOutChannels: number[];
  layersPerBlock: number[];
  onlyCrossAttention: boolean[];
  crossAttentionDim: number[];
  transformerLayersPerBlock: number[];
  /** Heads per block. diffusers quirk: SD 1.5's `attention_head_dim` is the head COUNT when `num_attention_heads` is unset. */
  numAttentionHeads: number[];
  downsamplePadding: number;
  midBlockScaleFactor: number;
  normNumGroups: number;
  normEps: number;
  useLinearProjection: boolean;
  convInKernel: number;
  convOutKernel: number;
  /** Width of the time-embedding MLP (diffusers: `time_embedding_dim` or 4 × block_out_channels[0]). */
  timeEmbedDim: number;
}

function perBlock<T>(value: T | T[], blocks: number): T[] {
  return Array.isArray(value) ? [...value] : Array.from({ length: blocks }, () => value);
}

/** Parses a diffusers `unet/config.json` object; throws a readable error on a bad or unsupported config. */
export function parseUnetConfig(json: unknown): UnetConfig {
  const parsed = unetConfigSchema.safeParse(json);
  if (!parsed.success) throw new Error(`unet config: ${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  const blocks = c.block_out_channels.length;
  const first = c.block_out_channels[0]!;
  const sampleSize = typeof c.sample_size === 'number' ? c.sample_size : null;
  return {
    sampleSize,
    inChannels: c.in_channels,
    outChannels: c.out_channels,
    centerInputSample: c.center_input_sample,
    flipSinToCos: c.flip_sin_to_cos,
    freqShift: c.freq_shift,
    downBlockTypes: c.down_block_types,
    upBlockTypes: c.up_block_types,
    blockOutChannels: c.block_out_channels,
    layersPerBlock: perBlock(c.layers_per_block, blocks),
    onlyCrossAttention: perBlock(c.only_cross_attention, blocks),
    crossAttentionDim: perBlock(c.cross_attention_dim, blocks),
    transformerLayersPerBlock: perBlock(c.transformer_layers_per_block, blocks),
    numAttentionHeads: perBlock(c.num_attention_heads ?? c.attention_head_dim, blocks),
    downsamplePadding: c.downsample_padding,
    midBlockScaleFactor: c.mid_block_scale_factor,
    normNumGroups: c.norm_num_groups,
    normEps: c.norm_eps,
    useLinearProjection: c.use_linear_projection,
    convInKernel: c.conv_in_kernel,
    convOutKernel: c.conv_out_kernel,
    timeEmbedDim: c.time_embedding_dim ?? first * 4,
  };
}
