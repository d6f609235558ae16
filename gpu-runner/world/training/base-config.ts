// The world pack's base model (stage 2, docs/world.md): a UNet2DConditionModel with SD 1.5's block types at small
// widths for the world VAE's 8 × 8 × 4 latents, and a CLIP-architecture text encoder with the real CLIP vocabulary
// (49408 tokens, the bundled tokenizer) and SD 1.5's 77 positions (the product's pipeline always feeds 77 tokens). Both
// are trained jointly from scratch by our engine (`train-base.ts`). Folder layout (diffusers): `unet/config.json` +
// `unet/diffusion_pytorch_model.safetensors`, `text_encoder/config.json` + `text_encoder/model.safetensors`, beside
// `vae/`.
//
// Size budget: the whole pack (VAE 1.9 MB + UNet + text encoder + hypernetwork) ≤ 25 MB in fp16. Counted by
// `baseParameterCounts()`: UNet 5.84 M, text encoder 3.32 M (3.16 M of it the token embedding) → 18.3 MB in fp16,
// leaving ≈ 4.7 MB (≈ 2.3 M parameters) for the hypernetwork. Two resnets per level (SD 1.5's `layers_per_block`)
// would cost 8.6 M UNet parameters and break the budget; a 128-wide text encoder 7 MB more.
import { SD15_SCHEDULER_CONFIG } from '../../diffusion/schedulers/sd15-config.ts';
import { parseClipTextConfig, type ClipTextConfig } from '../../models/clip-text/config.ts';
import { clipTextInventory } from '../../models/clip-text/inventory.ts';
import { parameterCount } from '../../models/inventory.ts';
import { parseUnetConfig } from '../../models/unet/config.ts';
import { unetInventory } from '../../models/unet/inventory.ts';
import { planUnet, type UnetPlan } from '../../models/unet/plan.ts';
import { WORLD_IMAGE_SIZE } from './vae-config.ts';

/** The world VAE is ×4: 32 px renders → 8 × 8 latents. */
export const BASE_LATENT_SIZE = WORLD_IMAGE_SIZE / 4;

/** The text encoder's width, which is also the UNet's `cross_attention_dim`. */
export const BASE_TEXT_WIDTH = 64;

/** Tokens per prompt: SD 1.5's (and the product pipeline's) 77. */
export const BASE_TEXT_LENGTH = 77;

/**
 * diffusers `unet/config.json`: three levels (64, 128, 128) at 8 × 8, 4 × 4, 2 × 2; cross-attention in the first two
 * down blocks and (mirrored) the last two up blocks, as SD 1.5 leaves its deepest level without attention.
 * `attention_head_dim` is a head COUNT, as in SD 1.5 (4 heads: head widths 16 and 32).
 */
export const BASE_UNET_CONFIG = {
  _class_name: 'UNet2DConditionModel',
  _diffusers_version: '0.24.0',
  act_fn: 'silu',
  attention_head_dim: 4,
  block_out_channels: [64, 128, 128],
  center_input_sample: false,
  cross_attention_dim: BASE_TEXT_WIDTH,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 1,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: BASE_LATENT_SIZE,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  use_linear_projection: false,
} as const;

/** transformers `text_encoder/config.json` (CLIPTextConfig): real CLIP vocabulary, 77 positions, width 64, 3 layers. */
export const BASE_TEXT_ENCODER_CONFIG = {
  architectures: ['CLIPTextModel'],
  attention_dropout: 0,
  bos_token_id: 0,
  dropout: 0,
  eos_token_id: 2,
  hidden_act: 'quick_gelu',
  hidden_size: BASE_TEXT_WIDTH,
  initializer_factor: 1,
  initializer_range: 0.02,
  intermediate_size: BASE_TEXT_WIDTH * 4,
  layer_norm_eps: 1e-5,
  max_position_embeddings: BASE_TEXT_LENGTH,
  model_type: 'clip_text_model',
  num_attention_heads: 4,
  num_hidden_layers: 3,
  pad_token_id: 1,
  projection_dim: BASE_TEXT_WIDTH,
  torch_dtype: 'float32',
  vocab_size: 49408,
} as const;

/**
 * diffusers `scheduler/scheduler_config.json`: SD 1.5's (PNDM, scaled-linear betas 0.00085 → 0.012 over 1000 steps,
 * epsilon prediction). Training uses the same 1000 DDPM betas.
 */
export const BASE_SCHEDULER_CONFIG = {
  ...SD15_SCHEDULER_CONFIG,
  _diffusers_version: '0.24.0',
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
} as const;

export const BASE_FOLDERS = { unet: 'unet', textEncoder: 'text_encoder', scheduler: 'scheduler' } as const;
export const BASE_FILES = {
  config: 'config.json',
  unetWeights: 'diffusion_pytorch_model.safetensors',
  textEncoderWeights: 'model.safetensors',
  schedulerConfig: 'scheduler_config.json',
} as const;

export interface BaseModel {
  readonly unetJson: Record<string, unknown>;
  readonly textJson: Record<string, unknown>;
  readonly unet: UnetPlan;
  readonly text: ClipTextConfig;
}

export function baseModel(unetJson: Record<string, unknown> = BASE_UNET_CONFIG, textJson: Record<string, unknown> = BASE_TEXT_ENCODER_CONFIG): BaseModel {
  const unet = planUnet(parseUnetConfig(unetJson));
  const text = parseClipTextConfig(textJson);
  if (unet.config.crossAttentionDim[0] !== text.hiddenSize) {
    throw new Error(`the UNet's cross_attention_dim ${unet.config.crossAttentionDim[0]} must equal the text encoder's hidden_size ${text.hiddenSize}`);
  }
  return { unetJson, textJson, unet, text };
}

export function baseParameterCounts(model: BaseModel = baseModel()): { unet: number; textEncoder: number; fp16Bytes: number } {
  const unet = parameterCount(unetInventory(model.unet));
  const textEncoder = parameterCount(clipTextInventory(model.text));
  return { unet, textEncoder, fp16Bytes: 2 * (unet + textEncoder) };
}
