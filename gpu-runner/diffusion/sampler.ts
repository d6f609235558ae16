// Text-to-image sampling, as diffusers' StableDiffusionPipeline.__call__ does it:
//   prompt + negative prompt → CLIP ids → text embeddings [uncond; cond]
//   → seeded Gaussian latents × init_noise_sigma
//   → for each timestep: ε = UNet([x; x], t, [uncond; cond]); ε̂ = ε_u + g·(ε_c − ε_u)   (classifier-free guidance,
//     Ho & Salimans 2022, eq. 6) ; x = scheduler.step(ε̂, t, x)
//   → VAE decode of x / scaling_factor → images in [−1, 1] → PNG.
// Image b of a batch uses seed + b for its latents (and its step noise), so any image can be regenerated alone.
import sharp from 'sharp';
import { fillGaussianFloat32, namedRng, type Pcg32 } from '../random/index.ts';
import { createScheduler, type GaussianSource, type Scheduler } from './schedulers/index.ts';
import { roundHalfEven } from './schedulers/noise-schedule.ts';
import type { ClipTokenizer } from './tokenizer/clip-tokenizer.ts';

/** Rows and spatial size of a latent batch [batch, latentChannels, height, width]. */
export interface LatentShape {
  batch: number;
  height: number;
  width: number;
}

/** The three networks, as functions over flat NCHW float32 tensors (the models' sessions implement these). */
export interface DiffusionModels {
  /** CLIP text encoder: input ids [batch, 77] → last_hidden_state [batch, 77, hidden]. */
  encodeText(inputIds: BigInt64Array, batch: number): Promise<Float32Array>;
  /** UNet ε (or v) prediction for latents [batch, C, h, w] at one timestep, conditioned on [batch, 77, hidden]. */
  predictNoise(latents: Float32Array, shape: LatentShape, timestep: number, context: Float32Array): Promise<Float32Array>;
  /** VAE decoder: latents [batch, C, h, w] (already divided by the scaling factor) → images [batch, 3, H, W]. */
  decodeLatents(latents: Float32Array, shape: LatentShape): Promise<Float32Array>;
  readonly latentChannels: number;
  /** Pixels per latent cell: 2^(number of VAE down blocks − 1) = 8 for SD 1.5. */
  readonly vaeScaleFactor: number;
  /** The VAE's `scaling_factor` (0.18215 for SD 1.5): latents are divided by it before decoding. */
  readonly scalingFactor: number;
}

export interface SchedulerChoice {
  className: string;
  /** A scheduler_config.json-shaped object (the model folder's `scheduler/scheduler_config.json`). */
  config: unknown;
}

export interface GenerateRequest {
  prompt: string;
  /** The negative prompt; "" (diffusers' default) when absent. */
  negativePrompt?: string;
  seed: number;
  numInferenceSteps: number;
  /** Classifier-free guidance scale; ≤ 1 disables guidance (one UNet batch instead of two). */
  guidanceScale: number;
  width: number;
  height: number;
  /** Images per prompt (default 1). */
  batchSize?: number;
  scheduler: SchedulerChoice;
  /** Called after every denoising step (progress reporting). */
  onStep?: (step: number, total: number) => void;
}

export interface StepTiming {
  /** Time inside `predictNoise`. */
  unetMs: number;
  /** Everything else the step does: input scaling, batching, guidance, scheduler update. */
  overheadMs: number;
}

export interface GenerateResult {
  /** Decoded images [batch, 3, height, width], values in [−1, 1] (unclamped). */
  images: Float32Array;
  /** Final latents [batch, C, height/8, width/8] before scaling. */
  latents: Float32Array;
  /** Per-image seeds (seed + index). */
  seeds: number[];
  timings: { textMs: number; steps: StepTiming[]; decodeMs: number };
}

/** Stream names under which the seeds draw (gpu-runner/random: independent purposes use different names). */
export const LATENT_STREAM = 'sd15.sampler.initial-latents';
export const STEP_NOISE_STREAM = 'sd15.sampler.step-noise';
/** CLIP's text context (SD 1.5 tokenizer model_max_length). */
const TEXT_LENGTH = 77;
/** diffusers: guidance is applied only when guidance_scale > 1. */
const GUIDANCE_THRESHOLD = 1;

function checkRequest(request: GenerateRequest, models: DiffusionModels): void {
  const { width, height, numInferenceSteps, guidanceScale } = request;
  const batch = request.batchSize ?? 1;
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0 || value % models.vaeScaleFactor !== 0) {
      throw new Error(`${name} must be a positive multiple of ${models.vaeScaleFactor}, got ${value}`);
    }
  }
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batchSize must be a positive integer, got ${batch}`);
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new Error(`numInferenceSteps must be a positive integer, got ${numInferenceSteps}`);
  }
  if (!Number.isFinite(guidanceScale)) throw new Error(`guidanceScale must be a finite number, got ${guidanceScale}`);
  if (!Number.isSafeInteger(request.seed) || request.seed < 0) {
    throw new Error(`seed must be a non-negative integer, got ${request.seed}`);
  }
}

/** Per-image Gaussian rows: row b is drawn from its own stream, so it does not depend on the batch size. */
class PerImageNoise implements GaussianSource {
  constructor(private readonly streams: Pcg32[]) {}

  normal(count: number): Float32Array {
    const rows = this.streams.length;
    if (count % rows !== 0) throw new Error(`noise of ${count} values does not split into ${rows} images`);
    const rowSize = count / rows;
    const out = new Float32Array(count);
    this.streams.forEach((rng, b) => out.set(fillGaussianFloat32(rng, rowSize), b * rowSize));
    return out;
  }
}

/** The seeded initial latents of one image: N(0, 1) from PCG32(seed, FNV-1a-64(LATENT_STREAM)), gpu-runner/random. */
export function initialLatents(seed: number, size: number): Float32Array {
  return fillGaussianFloat32(namedRng(BigInt(seed), LATENT_STREAM), size);
}

function repeatRows(row: Float32Array, times: number): Float32Array {
  const out = new Float32Array(row.length * times);
  for (let i = 0; i < times; i++) out.set(row, i * row.length);
  return out;
}

export async function generate(
  models: DiffusionModels,
  tokenizer: ClipTokenizer,
  request: GenerateRequest,
): Promise<GenerateResult> {
  checkRequest(request, models);
  const batch = request.batchSize ?? 1;
  const guided = request.guidanceScale > GUIDANCE_THRESHOLD;
  const scheduler: Scheduler = createScheduler(request.scheduler.className, request.scheduler.config);
  scheduler.setTimesteps(request.numInferenceSteps);

  // Text: one encoder batch of [negative, prompt] (or just the prompt without guidance), then repeated per image.
  let started = performance.now();
  const texts = guided ? [request.negativePrompt ?? '', request.prompt] : [request.prompt];
  const ids = new BigInt64Array(texts.length * TEXT_LENGTH);
  texts.forEach((text, i) => ids.set(tokenizer.tokenize(text).map(BigInt), i * TEXT_LENGTH));
  const embeddings = await models.encodeText(ids, texts.length);
  const rowSize = embeddings.length / texts.length;
  const rows = texts.map((_, i) => embeddings.subarray(i * rowSize, (i + 1) * rowSize));
  // diffusers order: all unconditional rows first, then all conditional rows.
  const context = new Float32Array(rowSize * texts.length * batch);
  rows.forEach((row, i) => context.set(repeatRows(row, batch), i * row.length * batch));
  const textMs = performance.now() - started;

  const latentHeight = request.height / models.vaeScaleFactor;
  const latentWidth = request.width / models.vaeScaleFactor;
  const imageLatentSize = models.latentChannels * latentHeight * latentWidth;
  const seeds = Array.from({ length: batch }, (_, b) => request.seed + b);
  let latents: Float32Array = new Float32Array(imageLatentSize * batch);
  seeds.forEach((seed, b) => latents.set(initialLatents(seed, imageLatentSize), b * imageLatentSize));
  const sigma = scheduler.initNoiseSigma;
  latents = latents.map((x) => x * sigma);
  const stepNoise = new PerImageNoise(seeds.map((seed) => namedRng(BigInt(seed), STEP_NOISE_STREAM)));

  const steps: StepTiming[] = [];
  const total = scheduler.timesteps.length;
  for (const [index, timestep] of scheduler.timesteps.entries()) {
    const stepStart = performance.now();
    const modelInput = scheduler.scaleModelInput(latents, timestep);
    const unetInput = guided ? repeatRows(modelInput, 2) : modelInput;
    const unetStart = performance.now();
    const unetShape = { batch: guided ? 2 * batch : batch, height: latentHeight, width: latentWidth };
    const prediction = await models.predictNoise(unetInput, unetShape, timestep, context);
    const unetMs = performance.now() - unetStart;
    const noisePrediction = guided ? applyGuidance(prediction, request.guidanceScale) : prediction;
    latents = scheduler.step(noisePrediction, timestep, latents, { generator: stepNoise }).prevSample;
    steps.push({ unetMs, overheadMs: performance.now() - stepStart - unetMs });
    request.onStep?.(index + 1, total);
  }

  started = performance.now();
  const scale = 1 / models.scalingFactor;
  const images = await models.decodeLatents(latents.map((x) => x * scale), { batch, height: latentHeight, width: latentWidth });
  const decodeMs = performance.now() - started;
  return { images, latents, seeds, timings: { textMs, steps, decodeMs } };
}

/** ε̂ = ε_u + g·(ε_c − ε_u) over a [2·batch] prediction whose first half is unconditional. */
export function applyGuidance(prediction: Float32Array, guidanceScale: number): Float32Array {
  const half = prediction.length / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const uncond = prediction[i]!;
    out[i] = uncond + guidanceScale * (prediction[half + i]! - uncond);
  }
  return out;
}

/** Images [batch, 3, H, W] in [−1, 1] → one PNG per image (diffusers' postprocess: (x/2 + 0.5) clamped, × 255, numpy rounding). */
export async function imagesToPng(images: Float32Array, batch: number, width: number, height: number): Promise<Buffer[]> {
  const plane = width * height;
  if (images.length !== batch * 3 * plane) {
    throw new Error(`expected ${batch}×3×${height}×${width} image values, got ${images.length}`);
  }
  const pngs: Buffer[] = [];
  for (let b = 0; b < batch; b++) {
    const pixels = Buffer.alloc(plane * 3);
    for (let c = 0; c < 3; c++) {
      const offset = (b * 3 + c) * plane;
      for (let p = 0; p < plane; p++) {
        const value = Math.min(1, Math.max(0, images[offset + p]! / 2 + 0.5));
        pixels[p * 3 + c] = roundHalfEven(value * 255);
      }
    }
    pngs.push(await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer());
  }
  return pngs;
}
