// Stable Diffusion 1.5's published model configs (unet/, vae/ and text_encoder/ config.json of the diffusers release),
// the architecture a single-file SD 1.x checkpoint carries no description of. test/fixtures/reference/sd15-manifest
// records the same configs with the full-size parameter names and shapes they produce.

export const SD15_UNET_CONFIG = {
  _class_name: 'UNet2DConditionModel',
  act_fn: 'silu',
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
} as const;

export const SD15_VAE_CONFIG = {
  _class_name: 'AutoencoderKL',
  act_fn: 'silu',
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 512,
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
} as const;

/** The text tower of openai/clip-vit-large-patch14, SD 1.x's text encoder. */
export const SD15_TEXT_ENCODER_CONFIG = {
  architectures: ['CLIPTextModel'],
  attention_dropout: 0,
  bos_token_id: 0,
  dropout: 0,
  eos_token_id: 2,
  hidden_act: 'quick_gelu',
  hidden_size: 768,
  initializer_factor: 1,
  initializer_range: 0.02,
  intermediate_size: 3072,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 77,
  model_type: 'clip_text_model',
  num_attention_heads: 12,
  num_hidden_layers: 12,
  pad_token_id: 1,
  projection_dim: 768,
  vocab_size: 49408,
} as const;

/** The three configs a single-file checkpoint is read against (SD 1.5's unless a test gives smaller ones). */
export interface SingleFileConfigs {
  unet: unknown;
  vae: unknown;
  textEncoder: unknown;
}

export const SD15_CONFIGS: SingleFileConfigs = { unet: SD15_UNET_CONFIG, vae: SD15_VAE_CONFIG, textEncoder: SD15_TEXT_ENCODER_CONFIG };

/**
 * diffusers' StableDiffusionPipeline index for a folder of SD 1.5's components; `names` (keys starting with "_", which
 * diffusers' loader ignores: the pack's name, our own `_hdb_*` keys) come after the class and version.
 */
export function sd15ModelIndex(names: Record<`_${string}`, unknown>): Record<string, unknown> {
  return {
    _class_name: 'StableDiffusionPipeline',
    _diffusers_version: '0.24.0',
    ...names,
    scheduler: ['diffusers', 'PNDMScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
    safety_checker: [null, null],
    feature_extractor: [null, null],
    requires_safety_checker: false,
  };
}
