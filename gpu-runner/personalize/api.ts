// The personalization library the runner calls (docs/method.md): predict, fastFinetune, and the baselines as methods.
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
  DEFAULT_IDENTIFIER,
  DEFAULT_RELAX_RANK,
  lidbFromParams,
  type OptimizationReport,
  type OptimizeOptions,
  optimizeOnSubject,
  relaxFromParams,
  weightsOf,
} from './finetune/fast-finetune.ts';
import { encodeSubject } from './finetune/subject.ts';
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

/**
 * One hypernetwork session per loaded model, built on first use (graph building and session creation dominate), on
 * the session host with the process's provider and threads.
 */
const predictSessions = new WeakMap<PersonalizationModel, Promise<SessionRunner>>();

/**
 * Above this many weight bytes the hypernetwork graph is saved with its weights as external data and opened from disk:
 * ONNX's protobuf holds at most 2 GiB inline, and the paper's ViT-H encoder alone is ≈ 2.5 GB in float32.
 */
export const INLINE_HYPERNETWORK_LIMIT_BYTES = 1.5 * 2 ** 30;

/** Builds the hypernetwork's inference graph and opens it, inline or (when large) saved under `cacheDir`. */
export async function openHypernetworkSession(model: PersonalizationModel, inlineLimitBytes = INLINE_HYPERNETWORK_LIMIT_BYTES, cacheDir?: string): Promise<SessionRunner> {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error(`model ${model.id} has no hypernetwork: predict needs a trained (or tiny) hypernetwork checkpoint`);
  const size = hyper.config.encoder.imageSize;
  const g = new Graph('hypernetwork');
  const pixels = g.input(HYPERNETWORK_INPUT, 'float32', [1, 3, size, size]);
  const out = buildHypernetwork(initializerParams(g, hyper.params), hyper.config, hyper.heads, pixels);
  out.factors.forEach((f, i) => {
    g.output(f.aTrain, `A_train.${i}`);
    g.output(f.bTrain, `B_train.${i}`);
  });
  let bytes = 0;
  for (const values of hyper.params.values()) bytes += values.byteLength;
  if (bytes <= inlineLimitBytes) return createSessionRunner(serializeModel(g), { kind: SESSION_KINDS.hypernetwork });
  // One saved copy per model, reused by later processes; written beside it and renamed, so readers never see half a file.
  const dir = cacheDir ?? join(tmpdir(), 'hdb-hypernetwork', model.sha256.slice(0, 32));
  const modelPath = join(dir, 'hypernetwork.onnx');
  if (!existsSync(modelPath)) {
    const partial = `${dir}.partial-${process.pid}`;
    saveModel(g, partial, 'hypernetwork.onnx', { file: 'hypernetwork.weights' });
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

function predictSession(model: PersonalizationModel): Promise<SessionRunner> {
  return liveRunner(predictSessions, model, () => openHypernetworkSession(model));
}

/** The hypernetwork's prediction: LiDB weights for every adapted layer (method `hyper-only`). */
export async function predict(model: PersonalizationModel, input: ImageInput): Promise<PersonalizedWeights> {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error(`model ${model.id} has no hypernetwork: predict needs a trained (or tiny) hypernetwork checkpoint`);
  const session = await predictSession(model);
  const encoder = hyper.config.encoder;
  const face = await preprocessFace(input.image, { size: encoder.imageSize, ...PIXEL_NORMALIZATION[encoder.normalization], ...(input.box ? { box: input.box } : {}) });
  const result = await session.run({ [HYPERNETWORK_INPUT]: float32Tensor(face.pixels, [1, 3, encoder.imageSize, encoder.imageSize]) });
  const lidb = hyper.heads.map((_, i): LidbTrainable => ({ aTrain: float32Data(result, `A_train.${i}`), bTrain: float32Data(result, `B_train.${i}`) }));
  return weightsOf(model, 'hyper-only', 0, { lidb });
}

export interface FastFinetuneOptions extends OptimizeOptions {
  readonly relax?: 'lora' | 'lidb';
  readonly rank?: number;
}

/** Rank-relaxed finetuning from `init` (the prediction, kept fixed): trains a rank-`rank` relax term. */
export async function fastFinetune(
  model: PersonalizationModel,
  input: ImageInput,
  init: PersonalizedWeights,
  options: FastFinetuneOptions = {},
): Promise<{ weights: PersonalizedWeights; report: OptimizationReport }> {
  if (!init.lidb) throw new Error('fastFinetune starts from LiDB weights (a prediction); these weights hold none');
  const mode = options.relax ?? 'lora';
  const rank = options.rank ?? DEFAULT_RELAX_RANK;
  const subject = await encodeSubject(model, input.image, input.box);
  const { params, values, report } = await optimizeOnSubject(model, subject, { kind: 'relax', mode, rank, fixedLidb: init.lidb }, options);
  const steps = options.steps ?? DEFAULT_FINETUNE_STEPS;
  return { weights: weightsOf(model, 'hyperdreambooth', steps, { lidb: init.lidb, relax: relaxFromParams(model, mode, rank, params, values) }), report };
}

export interface PersonalizeOptions extends FastFinetuneOptions {
  readonly method?: PersonalizationMethod;
}

/** One entry point for the method and its baselines (docs/method.md). */
export async function personalize(
  model: PersonalizationModel,
  input: ImageInput,
  options: PersonalizeOptions = {},
): Promise<{ weights: PersonalizedWeights; report?: OptimizationReport }> {
  const method = options.method ?? 'hyperdreambooth';
  options = { ...options, learningRate: options.learningRate ?? DEFAULT_LEARNING_RATES[method] };
  switch (method) {
    case 'hyper-only':
      return { weights: await predict(model, input) };
    case 'hyperdreambooth':
      return fastFinetune(model, input, await predict(model, input), options);
    case 'lidb-zero': {
      const subject = await encodeSubject(model, input.image, input.box);
      const steps = options.steps ?? DEFAULT_FROM_ZERO_STEPS;
      const { params, values, report } = await optimizeOnSubject(model, subject, { kind: 'lidb' }, { ...options, steps });
      return { weights: weightsOf(model, method, steps, { lidb: lidbFromParams(model, params, values) }), report };
    }
    case 'dreambooth-lora': {
      const subject = await encodeSubject(model, input.image, input.box);
      const steps = options.steps ?? DEFAULT_FROM_ZERO_STEPS;
      const rank = options.rank ?? DEFAULT_RELAX_RANK;
      const { params, values, report } = await optimizeOnSubject(model, subject, { kind: 'relax', mode: 'lora', rank }, { ...options, steps });
      return { weights: weightsOf(model, method, steps, { relax: relaxFromParams(model, 'lora', rank, params, values) }), report };
    }
    case 'textual-inversion': {
      const subject = await encodeSubject(model, input.image, input.box);
      const steps = options.steps ?? DEFAULT_FROM_ZERO_STEPS;
      const identifier = options.identifier ?? DEFAULT_IDENTIFIER;
      const tokenIds = identifierTokenIds(model, identifier);
      const { params, report } = await optimizeOnSubject(model, subject, { kind: 'textual-inversion', tokenIds }, { ...options, steps });
      return { weights: weightsOf(model, method, steps, { textualInversion: { token: identifier, tokenIds, embedding: params[TI_EMBEDDING_INPUT]! } }), report };
    }
  }
}
