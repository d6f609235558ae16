// The job request the edge POSTs to `RUNNER_URL/v1/jobs`. Tenant-free: the runner never learns who asked.
import { z } from 'zod';

export const PERSONALIZATION_METHODS = [
  'hyperdreambooth',
  'hyper-only',
  'lidb-zero',
  'dreambooth-lora',
  'textual-inversion',
] as const;
/**
 * `lidb` is the native file of every method (LiDB factors, relax term, textual-inversion rows); `kohya` is the kohya
 * LoRA, or for `textual-inversion` the kohya/A1111 embedding (`emb_params`); `peft` is the PEFT/diffusers LoRA.
 */
export const WEIGHT_FORMATS = ['lidb', 'kohya', 'peft'] as const;
export const WEIGHT_DTYPES = ['fp16', 'fp32'] as const;
export const SCHEDULERS = ['ddim', 'euler', 'euler-ancestral', 'dpmpp-2m', 'dpmpp-2m-karras', 'pndm'] as const;
export const IMAGE_CONTENT_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;

export const PersonalizationMethod = z.enum(PERSONALIZATION_METHODS);
export const WeightFormat = z.enum(WEIGHT_FORMATS);

/** The formats a method's weights can be written in: textual inversion has no LoRA, so no PEFT file. */
export function weightFormatsOf(method: (typeof PERSONALIZATION_METHODS)[number]): readonly (typeof WEIGHT_FORMATS)[number][] {
  return method === 'textual-inversion' ? ['lidb', 'kohya'] : WEIGHT_FORMATS;
}
export const WeightDtype = z.enum(WEIGHT_DTYPES);
export const Scheduler = z.enum(SCHEDULERS);

/** The runner's fast-finetune steps when a job names none (the library's `DEFAULT_FINETUNE_STEPS`, checked by a test). */
export const DEFAULT_FINETUNE_STEPS = 25;

/** Bounds shared by the edge's public API and the runner's validation (defaults: docs/method.md). */
export const LIMITS = {
  /** The fast finetune's default is 25 steps (docs/hypernetwork.md); DreamBooth-LoRA baselines go up to ~1200. */
  maxFinetuneSteps: 2000,
  maxRank: 64,
  maxGenerationSteps: 150,
  maxImagesPerGeneration: 8,
  minImageSide: 64,
  maxImageSide: 1024,
  maxSeed: 2 ** 32 - 1,
  maxPromptChars: 1000,
} as const;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'lowercase hex SHA-256');

/**
 * Binary input, either inline (small inputs) or as a URL the runner GETs (signed and short-lived, served by the edge).
 * The runner checks the sha256 of what it received in both cases.
 */
export const BlobSource = z.union([
  z.object({ data_base64: z.string().min(1), sha256, byte_size: z.number().int().positive() }).strict(),
  z.object({ url: z.url(), sha256, byte_size: z.number().int().positive() }).strict(),
]);
export type BlobSource = z.infer<typeof BlobSource>;

/**
 * Where the face is in a photo: a box in pixels of the upright image (after its EXIF orientation), origin top left.
 * The runner crops around it instead of taking the centre square; it must lie inside the decoded image.
 */
export const FaceBox = z
  .object({
    x: z.number().finite().min(0),
    y: z.number().finite().min(0),
    width: z.number().finite().positive(),
    height: z.number().finite().positive(),
  })
  .strict();
export type FaceBox = z.infer<typeof FaceBox>;

/** Whether `box` lies inside a `width` × `height` image (edges included). */
export function faceBoxInside(box: FaceBox, width: number, height: number): boolean {
  return box.x + box.width <= width && box.y + box.height <= height;
}

export const InputImage = z
  .object({
    content_type: z.enum(IMAGE_CONTENT_TYPES),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    source: BlobSource,
    /** Absent: the centre square. */
    face_box: FaceBox.optional(),
  })
  .strict();
export type InputImage = z.infer<typeof InputImage>;

export const FinetuneOptions = z
  .object({
    steps: z.number().int().min(0).max(LIMITS.maxFinetuneSteps).default(DEFAULT_FINETUNE_STEPS),
    rank: z.number().int().min(1).max(LIMITS.maxRank).default(4),
    relax: z.enum(['lora', 'lidb']).default('lora'),
    learning_rate: z.number().positive().max(1).optional(),
    seed: z.number().int().min(0).max(LIMITS.maxSeed).default(0),
    identifier_token: z.string().min(1).max(32).default('[V]'),
    /** DreamBooth's prior preservation: λ of the class samples' loss (the base model's own "a face, …" images); 0 or absent: off. */
    prior_preservation_weight: z.number().min(0).max(10).optional(),
  })
  .strict();
export type FinetuneOptions = z.infer<typeof FinetuneOptions>;

/** Adds an issue for each output whose format the method cannot write (shared by the edge's create request). */
export function refineOutputFormats(
  value: { method: (typeof PERSONALIZATION_METHODS)[number]; outputs: ReadonlyArray<{ format: (typeof WEIGHT_FORMATS)[number] }> },
  ctx: z.RefinementCtx,
): void {
  const formats = weightFormatsOf(value.method);
  value.outputs.forEach((output, index) => {
    if (!formats.includes(output.format)) {
      ctx.addIssue({
        code: 'custom',
        path: ['outputs', index, 'format'],
        message: `method ${value.method} has no ${output.format} file; it writes ${formats.join(', ')}`,
      });
    }
  });
}

export const PersonalizationPayload = z
  .object({
    method: PersonalizationMethod,
    /** Every image is used: the prediction combines them and the finetune takes them in turn (docs/api.md). */
    images: z.array(InputImage).min(1).max(10),
    finetune: FinetuneOptions,
    /** Formats and dtypes the edge wants back; the runner returns one file per (format, dtype). */
    outputs: z.array(z.object({ format: WeightFormat, dtype: WeightDtype }).strict()).min(1),
  })
  .strict()
  .superRefine(refineOutputFormats);
export type PersonalizationPayload = z.infer<typeof PersonalizationPayload>;

export const GenerationParams = z
  .object({
    prompt: z.string().min(1).max(LIMITS.maxPromptChars),
    negative_prompt: z.string().max(LIMITS.maxPromptChars).default(''),
    num_images: z.number().int().min(1).max(LIMITS.maxImagesPerGeneration).default(1),
    steps: z.number().int().min(1).max(LIMITS.maxGenerationSteps).default(25),
    guidance_scale: z.number().min(0).max(30).default(7.5),
    seed: z.number().int().min(0).max(LIMITS.maxSeed).default(0),
    scheduler: Scheduler.default('ddim'),
    width: z.number().int().min(LIMITS.minImageSide).max(LIMITS.maxImageSide).multipleOf(8).default(512),
    height: z.number().int().min(LIMITS.minImageSide).max(LIMITS.maxImageSide).multipleOf(8).default(512),
  })
  .strict();
export type GenerationParams = z.infer<typeof GenerationParams>;

export const GenerationPayload = z
  .object({
    /** The personalized weights to apply, in the native LiDB format. */
    weights: z.object({ format: WeightFormat, dtype: WeightDtype, source: BlobSource }).strict(),
    base_model_id: z.string().min(1),
    params: GenerationParams,
  })
  .strict();
export type GenerationPayload = z.infer<typeof GenerationPayload>;

const jobEnvelope = {
  job_id: z.string().min(1).max(64),
  /** 1 on first dispatch; a re-dispatch after a lost lease carries a higher attempt. */
  attempt: z.number().int().min(1),
  /** Absolute URL of the edge's `/internal/runner/events`. */
  events_url: z.url(),
  /** Seconds the edge waits for the next event before it considers the job lost and re-dispatches it. */
  lease_seconds: z.number().int().positive(),
};

export const JobRequest = z.discriminatedUnion('kind', [
  z.object({ ...jobEnvelope, kind: z.literal('personalization'), payload: PersonalizationPayload }).strict(),
  z.object({ ...jobEnvelope, kind: z.literal('generation'), payload: GenerationPayload }).strict(),
]);
export type JobRequest = z.infer<typeof JobRequest>;
export type JobKind = JobRequest['kind'];

/** The runner's answer to POST /v1/jobs: 202 accepted (also for a duplicate of an accepted job). */
export const JobAccepted = z.object({ job_id: z.string(), status: z.enum(['accepted', 'duplicate']) });
export type JobAccepted = z.infer<typeof JobAccepted>;

export type PersonalizationMethodName = z.infer<typeof PersonalizationMethod>;
export type WeightFormat = z.infer<typeof WeightFormat>;
export type WeightDtype = z.infer<typeof WeightDtype>;
export type SchedulerName = z.infer<typeof Scheduler>;
