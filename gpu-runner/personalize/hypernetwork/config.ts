// Hypernetwork sizes (HyperDreamBooth §3.2; docs/method.md, "Hypernetwork"): a ViT encoder, a linear map to face
// tokens, a transformer decoder refining one token per adapted layer K times, and one linear head per layer.
import { z } from 'zod';

/** Paper: K = 4 refinement iterations (θ_k = θ_{k−1} + Δ). */
export const DEFAULT_ITERATIONS = 4;
/**
 * Heads start near zero so the predicted ΔW ≈ 0 at initialization (docs/method.md, "Hypernetwork": N(0, 1e−3), read
 * as std 1e−3).
 */
export const DEFAULT_HEAD_INIT_STD = 1e-3;
/** timm's ViT initialization: truncated normal std 0.02 for weights and embeddings (here a plain normal). */
export const VIT_INIT_STD = 0.02;

/** Pixel normalization of the encoder's pretraining: ImageNet (timm) or OpenAI CLIP (open_clip). */
export const PIXEL_NORMALIZATION = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  clip: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] },
} as const;

const positiveInt = z.number().int().positive();

export const vitConfigSchema = z.object({
  imageSize: positiveInt.default(224),
  patchSize: positiveInt.default(16),
  width: positiveInt.default(768),
  depth: positiveInt.default(12),
  heads: positiveInt.default(12),
  mlpRatio: z.number().positive().default(4),
  layerNormEps: z.number().positive().default(1e-6),
  activation: z.enum(['gelu', 'quick_gelu']).default('gelu'),
  /** open_clip's ViTs normalize the embedded tokens before the blocks (`ln_pre`); timm's do not. */
  preNorm: z.boolean().default(false),
  normalization: z.enum(['imagenet', 'clip']).default('imagenet'),
});
export type VitConfig = z.output<typeof vitConfigSchema>;

export const hypernetworkConfigSchema = z
  .object({
    encoder: vitConfigSchema.default(vitConfigSchema.parse({})),
    /** d: width of face tokens and weight tokens. */
    tokenDim: positiveInt.default(512),
    decoderDepth: positiveInt.default(4),
    decoderHeads: positiveInt.default(8),
    decoderMlpRatio: z.number().positive().default(4),
    iterations: positiveInt.default(DEFAULT_ITERATIONS),
    headInitStd: z.number().positive().default(DEFAULT_HEAD_INIT_STD),
    /**
     * Adds a linear map of the encoder's class token to every refined weight token before the heads: a direct path
     * from who is in the photo to each layer's factors, beside the decoder's attention (docs/hypernetwork.md).
     */
    faceSkip: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    if (c.encoder.imageSize % c.encoder.patchSize !== 0) ctx.addIssue({ code: 'custom', message: 'encoder.imageSize must be a multiple of encoder.patchSize', path: ['encoder'] });
    if (c.encoder.width % c.encoder.heads !== 0) ctx.addIssue({ code: 'custom', message: 'encoder.width must split into encoder.heads', path: ['encoder'] });
    if (c.tokenDim % c.decoderHeads !== 0) ctx.addIssue({ code: 'custom', message: 'tokenDim must split into decoderHeads', path: ['tokenDim'] });
  });
export type HypernetworkConfig = z.output<typeof hypernetworkConfigSchema>;

export function parseHypernetworkConfig(json: unknown): HypernetworkConfig {
  const parsed = hypernetworkConfigSchema.safeParse(json);
  if (!parsed.success) throw new Error(`hypernetwork config: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** A tiny configuration for tests and the tiny pack (same structure, small widths). */
export const TINY_HYPERNETWORK_CONFIG: z.input<typeof hypernetworkConfigSchema> = {
  encoder: { imageSize: 32, patchSize: 8, width: 32, depth: 2, heads: 4, mlpRatio: 2 },
  tokenDim: 16,
  decoderDepth: 1,
  decoderHeads: 2,
  decoderMlpRatio: 2,
  iterations: 4,
};

export function vitTokenCount(encoder: VitConfig): number {
  return (encoder.imageSize / encoder.patchSize) ** 2 + 1;
}
