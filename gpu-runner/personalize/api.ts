// The personalization library the runner calls (docs/method.md): predict, fastFinetune, and the baselines as methods.
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Graph, saveModel, serializeModel } from '../onnx/index.ts';
import { createSessionRunner, float32Data, float32Tensor, liveRunner, type SessionRunner } from '../onnx/runtime/index.ts';
import { SESSION_KINDS } from '../models/session-kinds.ts';
import { type FaceBox, preprocessFace, type RgbPixels } from './face/preprocess.ts';
import {
  DEFAULT_FINETUNE_LEARNING_RATE,
  DEFAULT_FINETUNE_STEPS,
  DEFAULT_FINETUNE_TIMESTEPS,
  DEFAULT_IDENTIFIER,
  DEFAULT_RELAX_RANK,
  lidbFromParams,
  type OptimizationReport,
  type OptimizeOptions,
  optimizeOnSubject,
  relaxFromParams,
  weightsOf,
} from './finetune/fast-finetune.ts';
import { type EncodedSubject, encodeSubject } from './finetune/subject.ts';
import { identifierTokenIds, TI_EMBEDDING_INPUT } from './finetune/textual-inversion.ts';
import { buildHypernetwork, HYPERNETWORK_INPUT, initializerParams } from './hypernetwork/build.ts';
import { PIXEL_NORMALIZATION } from './hypernetwork/config.ts';
import type { LidbTrainable } from './lidb/delta.ts';
import type { PersonalizationModel } from './model.ts';
import type { PersonalizationMethod, PersonalizedWeights } from './weights/personalized-weights.ts';

/** Optimization from zero needs many more steps than a finetune from the prediction (paper: DreamBooth 1200 steps). */
export const DEFAULT_FROM_ZERO_STEPS = 400;

/**
 * Adam's learning rate per method when a job names none. The from-zero baselines: a feasibility run in the synthetic
 * world (docs/world.md) found LoRA r = 4 at 3e-3 and LiDB at 1.5e-2 capturing coarse identity in ≈ 300 steps; Textual
 * Inversion uses Gal et al.'s 5e-3. HyperDreamBooth's relax term: `DEFAULT_FINETUNE_LEARNING_RATE`, tuned by the world
 * benchmark.
 */
export const DEFAULT_LEARNING_RATES: Readonly<Record<PersonalizationMethod, number>> = {
  hyperdreambooth: DEFAULT_FINETUNE_LEARNING_RATE,
  'hyper-only': 0,
  'lidb-zero': 1.5e-2,
  'dreambooth-lora': 3e-3,
  'textual-inversion': 5e-3,
};

export interface ImageInput {
  readonly image: Uint8Array | RgbPixels;
  /** Face box in the upright image; the centre square when absent. */
  readonly box?: FaceBox;
}

/** A subject's photos: one, or several of the same person (each with its own face box). */
export type SubjectPhotos = ImageInput | readonly ImageInput[];

export function photosOf(input: SubjectPhotos): readonly ImageInput[] {
  const photos: readonly ImageInput[] = Array.isArray(input) ? input : [input as ImageInput];
  if (photos.length === 0) throw new Error('a subject needs at least one photo');
  return photos;
}

/**
 * How the hypernetwork's prediction uses several photos: `mean-weights` averages the factors predicted from each
 * photo, `mean-features` averages the encoder's tokens before the decoder, `first` predicts from the first photo only.
 */
export const PHOTO_COMBINATIONS = ['mean-weights', 'mean-features', 'first'] as const;
export type PhotoCombination = (typeof PHOTO_COMBINATIONS)[number];
/** The two means agree on the world's validation faces; this one reuses the one-photo graph (docs/hypernetwork.md). */
export const DEFAULT_PHOTO_COMBINATION: PhotoCombination = 'mean-weights';

/**
 * One hypernetwork session per loaded model and batch (1, or n photos pooled by `mean-features`), built on first use
 * (graph building and session creation dominate), on the session host with the process's provider and threads.
 */
const predictSessions = new WeakMap<object, Promise<SessionRunner>>();
/** Stable cache keys per (model, pooled photo count); 1 is the single-photo graph. */
const predictKeys = new WeakMap<PersonalizationModel, Map<number, object>>();

function predictKey(model: PersonalizationModel, photos: number): object {
  let keys = predictKeys.get(model);
  if (!keys) predictKeys.set(model, (keys = new Map()));
  let key = keys.get(photos);
  if (!key) keys.set(photos, (key = {}));
  return key;
}

/**
 * Above this many weight bytes the hypernetwork graph is saved with its weights as external data and opened from disk:
 * ONNX's protobuf holds at most 2 GiB inline, and the paper's ViT-H encoder alone is ≈ 2.5 GB in float32.
 */
export const INLINE_HYPERNETWORK_LIMIT_BYTES = 1.5 * 2 ** 30;

/**
 * Builds the hypernetwork's inference graph and opens it, inline or (when large) saved under `cacheDir`. With
 * `pooledPhotos` > 1 the graph takes that many photos and averages their encoder tokens (`mean-features`).
 */
export async function openHypernetworkSession(
  model: PersonalizationModel,
  inlineLimitBytes = INLINE_HYPERNETWORK_LIMIT_BYTES,
  cacheDir?: string,
  pooledPhotos = 1,
): Promise<SessionRunner> {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error(`model ${model.id} has no hypernetwork: predict needs a trained (or tiny) hypernetwork checkpoint`);
  const size = hyper.config.encoder.imageSize;
  const g = new Graph('hypernetwork');
  const pixels = g.input(HYPERNETWORK_INPUT, 'float32', [pooledPhotos, 3, size, size]);
  const out = buildHypernetwork(initializerParams(g, hyper.params), hyper.config, hyper.heads, pixels, { poolPhotos: pooledPhotos > 1 });
  out.factors.forEach((f, i) => {
    g.output(f.aTrain, `A_train.${i}`);
    g.output(f.bTrain, `B_train.${i}`);
  });
  let bytes = 0;
  for (const values of hyper.params.values()) bytes += values.byteLength;
  if (bytes <= inlineLimitBytes) return createSessionRunner(serializeModel(g), { kind: SESSION_KINDS.hypernetwork });
  // One saved copy per model, reused by later processes; written beside it and renamed, so readers never see half a file.
  const name = pooledPhotos > 1 ? `hypernetwork-${pooledPhotos}-photos` : 'hypernetwork';
  const dir = cacheDir ?? join(tmpdir(), 'hdb-hypernetwork', hypernetworkDigest(hyper).slice(0, 32), ...(pooledPhotos > 1 ? [name] : []));
  const modelPath = join(dir, `${name}.onnx`);
  if (!existsSync(modelPath)) {
    const partial = `${dir}.partial-${process.pid}`;
    saveModel(g, partial, `${name}.onnx`, { file: `${name}.weights` });
    try {
      mkdirSync(dirname(dir), { recursive: true });
      renameSync(partial, dir);
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      if (!existsSync(modelPath)) throw error;
    }
  }
  return createSessionRunner(modelPath, { kind: SESSION_KINDS.hypernetwork });
}

/**
 * Names a saved hypernetwork graph by what is in it: its config and parameters. The model's digest would not do, since
 * the pack digest leaves the hypernetwork out, so a retrained one would reuse the old saved copy.
 */
function hypernetworkDigest(hyper: NonNullable<PersonalizationModel['hypernetwork']>): string {
  const hash = createHash('sha256').update(JSON.stringify(hyper.config));
  for (const name of [...hyper.params.keys()].sort()) {
    const values = hyper.params.get(name)!;
    hash.update(`${name}\0${values.length}\0`).update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

function predictSession(model: PersonalizationModel, pooledPhotos = 1): Promise<SessionRunner> {
  return liveRunner(predictSessions, predictKey(model, pooledPhotos), () => openHypernetworkSession(model, undefined, undefined, pooledPhotos));
}

/** Each photo as the hypernetwork's encoder sees it: cropped around its face box (or the centre), normalized. */
export async function encoderInputs(model: PersonalizationModel, photos: readonly ImageInput[]): Promise<Float32Array[]> {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error(`model ${model.id} has no hypernetwork: predict needs a trained (or tiny) hypernetwork checkpoint`);
  const encoder = hyper.config.encoder;
  const options = { size: encoder.imageSize, ...PIXEL_NORMALIZATION[encoder.normalization] };
  return Promise.all(photos.map(async (photo) => (await preprocessFace(photo.image, { ...options, ...(photo.box ? { box: photo.box } : {}) })).pixels));
}

function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
  parts.reduce((offset, part) => (out.set(part, offset), offset + part.length), 0);
  return out;
}

/** Element-wise mean of same-length arrays. */
function meanFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts[0]!.length);
  for (const part of parts) for (let i = 0; i < out.length; i++) out[i] = out[i]! + part[i]!;
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / parts.length;
  return out;
}

/**
 * The hypernetwork's prediction: LiDB weights for every adapted layer (method `hyper-only`), from the subject's photos
 * combined by `combination`.
 */
export async function predict(model: PersonalizationModel, input: SubjectPhotos, combination: PhotoCombination = DEFAULT_PHOTO_COMBINATION): Promise<PersonalizedWeights> {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error(`model ${model.id} has no hypernetwork: predict needs a trained (or tiny) hypernetwork checkpoint`);
  const all = photosOf(input);
  const photos = combination === 'first' ? all.slice(0, 1) : all;
  const side = hyper.config.encoder.imageSize;
  const pixels = await encoderInputs(model, photos);
  const factorsOf = (result: Awaited<ReturnType<SessionRunner['run']>>) =>
    hyper.heads.map((_, i): LidbTrainable => ({ aTrain: float32Data(result, `A_train.${i}`), bTrain: float32Data(result, `B_train.${i}`) }));
  if (combination === 'mean-features' && photos.length > 1) {
    const session = await predictSession(model, photos.length);
    const result = await session.run({ [HYPERNETWORK_INPUT]: float32Tensor(concatFloat32(pixels), [photos.length, 3, side, side]) });
    return weightsOf(model, 'hyper-only', 0, { lidb: factorsOf(result) });
  }
  const session = await predictSession(model);
  const each: LidbTrainable[][] = [];
  for (const face of pixels) each.push(factorsOf(await session.run({ [HYPERNETWORK_INPUT]: float32Tensor(face, [1, 3, side, side]) })));
  if (each.length === 1) return weightsOf(model, 'hyper-only', 0, { lidb: each[0]! });
  const lidb = hyper.heads.map((_, i): LidbTrainable => ({ aTrain: meanFloat32(each.map((f) => f[i]!.aTrain)), bTrain: meanFloat32(each.map((f) => f[i]!.bTrain)) }));
  return weightsOf(model, 'hyper-only', 0, { lidb });
}

/** Every photo encoded for the diffusion loss (the optimizers take them in turn, one per step). */
function encodeSubjectPhotos(model: PersonalizationModel, input: SubjectPhotos): Promise<EncodedSubject[]> {
  return Promise.all(photosOf(input).map((photo) => encodeSubject(model, photo.image, photo.box)));
}

export interface FastFinetuneOptions extends OptimizeOptions {
  readonly relax?: 'lora' | 'lidb';
  readonly rank?: number;
  /** How the prediction combines several photos (`DEFAULT_PHOTO_COMBINATION` when absent). */
  readonly combination?: PhotoCombination;
}

/**
 * Rank-relaxed finetuning from `init` (the prediction, kept fixed): trains a rank-`rank` relax term on the subject's
 * photos, one photo per step in turn, at `DEFAULT_FINETUNE_TIMESTEPS` unless the options name others.
 */
export async function fastFinetune(
  model: PersonalizationModel,
  input: SubjectPhotos,
  init: PersonalizedWeights,
  options: FastFinetuneOptions = {},
): Promise<{ weights: PersonalizedWeights; report: OptimizationReport }> {
  if (!init.lidb) throw new Error('fastFinetune starts from LiDB weights (a prediction); these weights hold none');
  const mode = options.relax ?? 'lora';
  const rank = options.rank ?? DEFAULT_RELAX_RANK;
  const subject = await encodeSubjectPhotos(model, input);
  const { params, values, report } = await optimizeOnSubject(
    model,
    subject,
    { kind: 'relax', mode, rank, fixedLidb: init.lidb },
    { ...options, timesteps: options.timesteps ?? DEFAULT_FINETUNE_TIMESTEPS },
  );
  const steps = options.steps ?? DEFAULT_FINETUNE_STEPS;
  return { weights: weightsOf(model, 'hyperdreambooth', steps, { lidb: init.lidb, relax: relaxFromParams(model, mode, rank, params, values) }), report };
}

export interface PersonalizeOptions extends FastFinetuneOptions {
  readonly method?: PersonalizationMethod;
}

/** One entry point for the method and its baselines (docs/method.md); every method uses every photo. */
export async function personalize(
  model: PersonalizationModel,
  input: SubjectPhotos,
  options: PersonalizeOptions = {},
): Promise<{ weights: PersonalizedWeights; report?: OptimizationReport }> {
  const method = options.method ?? 'hyperdreambooth';
  options = { ...options, learningRate: options.learningRate ?? DEFAULT_LEARNING_RATES[method] };
  switch (method) {
    case 'hyper-only':
      return { weights: await predict(model, input, options.combination) };
    case 'hyperdreambooth':
      return fastFinetune(model, input, await predict(model, input, options.combination), options);
    case 'lidb-zero': {
      const subject = await encodeSubjectPhotos(model, input);
      const steps = options.steps ?? DEFAULT_FROM_ZERO_STEPS;
      const { params, values, report } = await optimizeOnSubject(model, subject, { kind: 'lidb' }, { ...options, steps });
      return { weights: weightsOf(model, method, steps, { lidb: lidbFromParams(model, params, values) }), report };
    }
    case 'dreambooth-lora': {
      const subject = await encodeSubjectPhotos(model, input);
      const steps = options.steps ?? DEFAULT_FROM_ZERO_STEPS;
      const rank = options.rank ?? DEFAULT_RELAX_RANK;
      const { params, values, report } = await optimizeOnSubject(model, subject, { kind: 'relax', mode: 'lora', rank }, { ...options, steps });
      return { weights: weightsOf(model, method, steps, { relax: relaxFromParams(model, 'lora', rank, params, values) }), report };
    }
    case 'textual-inversion': {
      const subject = await encodeSubjectPhotos(model, input);
      const steps = options.steps ?? DEFAULT_FROM_ZERO_STEPS;
      const identifier = options.identifier ?? DEFAULT_IDENTIFIER;
      const tokenIds = identifierTokenIds(model, identifier);
      const { params, report } = await optimizeOnSubject(model, subject, { kind: 'textual-inversion', tokenIds }, { ...options, steps });
      return { weights: weightsOf(model, method, steps, { textualInversion: { token: identifier, tokenIds, embedding: params[TI_EMBEDDING_INPUT]! } }), report };
    }
  }
}
