// transformers `CLIPTextConfig` as written to `text_encoder/config.json` (SD 1.5: openai/clip-vit-large-patch14's text tower).
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const clipTextConfigSchema = z
  .object({
    model_type: z.literal('clip_text_model').optional(),
    vocab_size: positiveInt.default(49408),
    hidden_size: positiveInt.default(512),
    intermediate_size: positiveInt.default(2048),
    num_hidden_layers: positiveInt.default(12),
    num_attention_heads: positiveInt.default(8),
    max_position_embeddings: positiveInt.default(77),
    hidden_act: z.enum(['quick_gelu', 'gelu']).default('quick_gelu'),
    layer_norm_eps: z.number().positive().default(1e-5),
    bos_token_id: z.number().int().default(49406),
    // Absent in a config: assume the legacy 2 (argmax pooling), which is also right for every real CLIP vocabulary.
    eos_token_id: z.number().int().default(2),
    pad_token_id: z.number().int().default(1),
  })
  .refine((c) => c.hidden_size % c.num_attention_heads === 0, {
    message: 'hidden_size must be divisible by num_attention_heads',
    path: ['num_attention_heads'],
  });

export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  hiddenAct: 'quick_gelu' | 'gelu';
  layerNormEps: number;
  eosTokenId: number;
}

/**
 * transformers keeps SD 1.5's legacy `eos_token_id: 2` working by pooling at argmax(input_ids) whenever the config says 2
 * (the EOS id 49407 is the largest id in CLIP's vocabulary); any other value pools at the first position holding it.
 */
export const LEGACY_EOS_TOKEN_ID = 2;

export function parseClipTextConfig(json: unknown): ClipTextConfig {
  const parsed = clipTextConfigSchema.safeParse(json);
  if (!parsed.success) throw new Error(`text_encoder config: ${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  return {
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numHiddenLayers: c.num_hidden_layers,
    numAttentionHeads: c.num_attention_heads,
    headDim: c.hidden_size / c.num_attention_heads,
    maxPositionEmbeddings: c.max_position_embeddings,
    hiddenAct: c.hidden_act,
    layerNormEps: c.layer_norm_eps,
    eosTokenId: c.eos_token_id,
  };
}
