// The base model's data: TRAIN-identity renders (many contexts, nuisance, identifier captions; dataset.ts) encoded once
// by the world VAE to scaled 8 × 8 × 4 latents (posterior means × scaling_factor) and tokenized to 77 ids, cached in one
// safetensors file keyed by the VAE's bytes, the world config and the renders themselves (a changed renderer or VAE
// makes a new cache). A training step's batch, timesteps, noise and caption dropout are pure functions of the step.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, writeSafetensors } from '../../io/safetensors.ts';
import { ClipTokenizer, BUNDLED_CLIP_VOCAB } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import { alphasCumprod } from '../../diffusion/schedulers/noise-schedule.ts';
import { buildVaeEncoderGraph, VAE_ENCODE } from '../../models/vae/build.ts';
import { mapParams } from '../../models/params.ts';
import { serializeModel } from '../../onnx/index.ts';
import { createSessionRunner, float32Tensor, int64Tensor, type RuntimeFeeds } from '../../onnx/runtime/index.ts';
import { fillGaussianFloat32, namedRng, uniform53 } from '../../random/index.ts';
import { DEFAULT_WORLD, sampleAt, type WorldConfig } from '../dataset.ts';
import { BASE_SCHEDULER_CONFIG, BASE_TEXT_LENGTH } from './base-config.ts';
import { BASE_TRAIN_INPUTS } from './base-graph.ts';
import { imagesToNchw, worldAt } from './vae-data.ts';
import { readVaePack, VAE_CONFIG_FILE, VAE_WEIGHTS_FILE } from './vae-params.ts';

export const LATENTS_TENSOR = 'latents';
export const INPUT_IDS_TENSOR = 'input_ids';
const ENCODE_BATCH = 64;

export interface LatentSet {
  readonly count: number;
  /** Elements per latent (4 × 8 × 8) and its NCHW shape without the batch. */
  readonly latentShape: readonly [number, number, number];
  /** Scaled latents, `count` × latentLength. */
  readonly latents: Float32Array;
  /** CLIP ids, `count` × 77 (SD 1.5 framing). */
  readonly inputIds: Int32Array;
  readonly scalingFactor: number;
  readonly key: string;
}

let sharedTokenizer: ClipTokenizer | undefined;
export function baseTokenizer(): ClipTokenizer {
  return (sharedTokenizer ??= ClipTokenizer.load(BUNDLED_CLIP_VOCAB));
}

/** What the cache depends on: the VAE's files, the world config, the count, and a few renders (the renderer's code). */
function cacheKey(vaeDir: string, world: WorldConfig, count: number): string {
  const hash = createHash('sha256');
  hash.update(readFileSync(join(vaeDir, VAE_WEIGHTS_FILE)));
  hash.update(readFileSync(join(vaeDir, VAE_CONFIG_FILE)));
  hash.update(JSON.stringify({ world, count, textLength: BASE_TEXT_LENGTH }));
  for (const index of [0, 1, 2, 3]) {
    const sample = sampleAt(world, 'train', index);
    hash.update(sample.caption);
    hash.update(new Uint8Array(sample.image.data.buffer, sample.image.data.byteOffset, sample.image.data.byteLength));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Renders and encodes train samples 0…count−1; `onProgress` gets the number done. */
export async function encodeTrainSamples(vaeDir: string, world: WorldConfig, count: number, onProgress: (done: number) => void = () => {}): Promise<Omit<LatentSet, 'key'>> {
  const { vae, params, scalingFactor } = readVaePack(vaeDir);
  if (world.size !== vae.imageSize) throw new Error(`the world renders ${world.size} px, the VAE takes ${vae.imageSize} px`);
  const graph = buildVaeEncoderGraph(vae.plan, mapParams(new Map(Object.entries(params))), { batch: ENCODE_BATCH, height: vae.imageSize, width: vae.imageSize }).graph;
  graph.outputs.splice(0, graph.outputs.length, VAE_ENCODE.mean);
  const runner = await createSessionRunner(serializeModel(graph));
  const latentShape = [vae.config.latentChannels, vae.latentSize, vae.latentSize] as const;
  const latentLength = latentShape[0] * latentShape[1] * latentShape[2];
  const latents = new Float32Array(count * latentLength);
  const inputIds = new Int32Array(count * BASE_TEXT_LENGTH);
  const tokenizer = baseTokenizer();
  try {
    for (let start = 0; start < count; start += ENCODE_BATCH) {
      const samples = Array.from({ length: Math.min(ENCODE_BATCH, count - start) }, (_, i) => sampleAt(world, 'train', start + i));
      // The session's batch is static: pad the last chunk by repeating its first image, then drop the padding.
      const images = [...samples.map((s) => s.image), ...Array.from({ length: ENCODE_BATCH - samples.length }, () => samples[0]!.image)];
      const result = await runner.run({ [VAE_ENCODE.input]: float32Tensor(imagesToNchw(images), [ENCODE_BATCH, 3, vae.imageSize, vae.imageSize]) });
      const mean = result[VAE_ENCODE.mean]!.data as Float32Array;
      for (let i = 0; i < samples.length * latentLength; i++) latents[start * latentLength + i] = mean[i]! * scalingFactor;
      samples.forEach((s, i) => inputIds.set(tokenizer.tokenize(s.caption), (start + i) * BASE_TEXT_LENGTH));
      onProgress(start + samples.length);
    }
  } finally {
    await runner.close();
  }
  return { count, latentShape, latents, inputIds, scalingFactor };
}

/** The cached latent set for (VAE, world, count), built and written first if absent. */
export async function loadOrBuildLatentSet(cacheDir: string, vaeDir: string, count: number, world: WorldConfig = worldAt(32, DEFAULT_WORLD), onProgress?: (done: number) => void): Promise<LatentSet & { path: string; built: boolean }> {
  const key = cacheKey(vaeDir, world, count);
  const path = join(cacheDir, `latents-${key}.safetensors`);
  if (existsSync(path)) {
    const { tensors, metadata } = loadSafetensors(path);
    const latents = tensors.get(LATENTS_TENSOR);
    const ids = tensors.get(INPUT_IDS_TENSOR);
    if (!latents || latents.dtype !== 'F32' || !ids || ids.dtype !== 'I32') throw new Error(`${path} is not a base latent cache`);
    const [n, c, h, w] = latents.shape as [number, number, number, number];
    return { count: n, latentShape: [c, h, w], latents: latents.data as Float32Array, inputIds: ids.data as Int32Array, scalingFactor: Number(metadata['scalingFactor']), key, path, built: false };
  }
  const set = await encodeTrainSamples(vaeDir, world, count, onProgress);
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${path}.partial`;
  writeSafetensors(
    partial,
    {
      [LATENTS_TENSOR]: { dtype: 'F32', shape: [count, ...set.latentShape], data: set.latents },
      [INPUT_IDS_TENSOR]: { dtype: 'I32', shape: [count, BASE_TEXT_LENGTH], data: set.inputIds },
    },
    { scalingFactor: String(set.scalingFactor), world: JSON.stringify(world), count: String(count) },
  );
  renameSync(partial, path);
  return { ...set, key, path, built: true };
}

export interface StepBatchSettings {
  readonly batch: number;
  readonly seed: number;
  /** Share of captions replaced by the empty caption (classifier-free guidance). */
  readonly captionDropout: number;
  /** min-SNR-γ weighting (Hang et al. 2023): w = min(SNR, γ) / SNR for epsilon prediction. */
  readonly minSnrGamma: number;
}

const ALPHAS_CUMPROD = alphasCumprod(BASE_SCHEDULER_CONFIG);

export interface StepBatch {
  readonly feeds: RuntimeFeeds;
  readonly indices: number[];
  readonly timesteps: number[];
  readonly dropped: boolean[];
}

/** Step `step`'s batch: samples drawn with replacement, timesteps uniform in [0, 1000), Gaussian noise, dropout. */
export function stepBatch(set: LatentSet, settings: StepBatchSettings, step: number): StepBatch {
  const { batch, seed } = settings;
  const latentLength = set.latentShape[0] * set.latentShape[1] * set.latentShape[2];
  const rng = namedRng(seed, `world-base/step/${step}`);
  const noise = fillGaussianFloat32(namedRng(seed, `world-base/noise/${step}`), batch * latentLength, 1);
  const noisy = new Float32Array(batch * latentLength);
  const ids = new BigInt64Array(batch * BASE_TEXT_LENGTH);
  const timestep = new Float32Array(batch);
  const weight = new Float32Array(batch);
  const empty = baseTokenizer().tokenize('');
  const indices: number[] = [];
  const timesteps: number[] = [];
  const dropped: boolean[] = [];
  for (let b = 0; b < batch; b++) {
    const index = Math.floor(uniform53(rng) * set.count);
    const t = Math.floor(uniform53(rng) * ALPHAS_CUMPROD.length);
    const drop = uniform53(rng) < settings.captionDropout;
    const alphaBar = ALPHAS_CUMPROD[t]!;
    const a = Math.sqrt(alphaBar);
    const s = Math.sqrt(1 - alphaBar);
    for (let i = 0; i < latentLength; i++) noisy[b * latentLength + i] = a * set.latents[index * latentLength + i]! + s * noise[b * latentLength + i]!;
    for (let i = 0; i < BASE_TEXT_LENGTH; i++) ids[b * BASE_TEXT_LENGTH + i] = BigInt(drop ? empty[i]! : set.inputIds[index * BASE_TEXT_LENGTH + i]!);
    const snr = alphaBar / (1 - alphaBar);
    timestep[b] = t;
    weight[b] = Math.min(snr, settings.minSnrGamma) / snr;
    indices.push(index);
    timesteps.push(t);
    dropped.push(drop);
  }
  const shape = [batch, ...set.latentShape];
  return {
    feeds: {
      [BASE_TRAIN_INPUTS.inputIds]: int64Tensor(ids, [batch, BASE_TEXT_LENGTH]),
      [BASE_TRAIN_INPUTS.noisyLatents]: float32Tensor(noisy, shape),
      [BASE_TRAIN_INPUTS.timestep]: float32Tensor(timestep, [batch]),
      [BASE_TRAIN_INPUTS.noise]: float32Tensor(noise, shape),
      [BASE_TRAIN_INPUTS.lossWeight]: float32Tensor(weight, [batch, 1, 1, 1]),
    },
    indices,
    timesteps,
    dropped,
  };
}
