// The tiny model pack's configs: Stable Diffusion 1.5's topology (4 UNet levels with cross-attention in the first
// three, CLIP text encoder, ×8 AutoencoderKL) at small widths, so the whole product runs on a 2-core CPU.
// Images are 64 px → 8 × 8 × 4 latents, as SD 1.5's 512 px → 64 × 64 × 4.
import { SD15_SCHEDULER_CONFIG } from '../diffusion/schedulers/sd15-config.ts';

export const TINY_PACK_ID = 'hdb-tiny-sd15-random-v2';
export const TINY_IMAGE_SIZE = 64;

/** diffusers UNet2DConditionModel config (SD 1.5's keys; attention_head_dim is a head COUNT as in SD 1.5). */
export const TINY_UNET_CONFIG = {
  _class_name: 'UNet2DConditionModel',
  _diffusers_version: '0.24.0',
  act_fn: 'silu',
  attention_head_dim: 4,
  block_out_channels: [32, 64, 64, 64],
  center_input_sample: false,
  cross_attention_dim: 64,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 1,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 8,
  out_channels: 4,
  sample_size: TINY_IMAGE_SIZE / 8,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  use_linear_projection: false,
} as const;

/** transformers CLIPTextConfig with the real CLIP vocabulary (49408 tokens) and 77 positions. */
export const TINY_TEXT_ENCODER_CONFIG = {
  architectures: ['CLIPTextModel'],
  attention_dropout: 0,
  bos_token_id: 0,
  dropout: 0,
  eos_token_id: 2,
  hidden_act: 'quick_gelu',
  hidden_size: 64,
  initializer_factor: 1,
  initializer_range: 0.02,
  intermediate_size: 256,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 77,
  model_type: 'clip_text_model',
  num_attention_heads: 4,
  num_hidden_layers: 3,
  pad_token_id: 1,
  projection_dim: 64,
  torch_dtype: 'float32',
  vocab_size: 49408,
} as const;

/** diffusers AutoencoderKL config: four levels (×8), SD 1.5's scaling factor until a trained pack measures its own. */
export const TINY_VAE_CONFIG = {
  _class_name: 'AutoencoderKL',
  _diffusers_version: '0.24.0',
  act_fn: 'silu',
  block_out_channels: [16, 32, 64, 64],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  force_upcast: true,
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 8,
  out_channels: 3,
  sample_size: TINY_IMAGE_SIZE,
  scaling_factor: 0.18215,
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
} as const;

/** SD 1.5's published scheduler config as diffusers 0.24 saves it: the published keys plus the defaults it fills in. */
export const TINY_SCHEDULER_CONFIG = {
  ...SD15_SCHEDULER_CONFIG,
  _diffusers_version: '0.24.0',
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
} as const;
