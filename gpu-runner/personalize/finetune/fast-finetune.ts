// Rank-relaxed fast finetuning (HyperDreamBooth §3.3) and the optimization-based baselines: a few dozen Adam steps of
// the diffusion loss on the subject's photos with "a [V] face", timesteps (./timesteps.ts) and noise from a seed.
import { dirname, resolve, sep } from 'node:path';
import type { ModelWeights } from '../../models/checkpoint/weights.ts';
import { externalParams, type ParamSource } from '../../models/params.ts';
import { isExternal } from '../../onnx/index.ts';
import { adam } from '../../onnx/optim/adam.ts';
import { constantSchedule } from '../../onnx/optim/schedule.ts';
import { createTrainer, type Trainer } from '../../onnx/training/trainer.ts';
import type { ParamSet } from '../../onnx/optim/types.ts';
import { float32Tensor, int64Tensor, type RuntimeFeeds } from '../../onnx/runtime/tensor.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import type { LidbTrainable, LoraFactors } from '../lidb/delta.ts';
import { lidbAdapterFeeds, type LidbAdapterValues } from '../lidb/graph-adapter.ts';
import type { PersonalizationModel } from '../model.ts';
import type { PersonalizationMethod, PersonalizedWeights, RelaxTerm } from '../weights/personalized-weights.ts';
import { BindingGraph, buildDiffusionLossGraph, LOSS_INPUTS, LOSS_OUTPUT } from './diffusion-loss-graph.ts';
import { embeddingRows, TI_EMBEDDING_INPUT, TOKEN_EMBEDDING_PARAM, withTrainableRows } from './textual-inversion.ts';
import type { EncodedSubject } from './subject.ts';
import type { PriorPreservation } from './prior.ts';
import { checkTimestepSchedule, type TimestepSchedule, timestepOfStep, UNIFORM_TIMESTEPS } from './timesteps.ts';

/**
 * Finetuning iterations at rank 4 after the hypernetwork's prediction. The paper runs 40 (§4). With a prediction that
 * already carries the face, fewer steps are enough. On the world pack's VALIDATION faces (24 identities × 6 prompts,
 * each face with its own optimizer seed, mean of benchmark seeds 1 and 2; docs/hypernetwork.md), identity / prompt
 * fidelity after 25 steps:
 * - timesteps spread over the lower 60% of the schedule, lr 8e-3: 0.708 and 0.859 (the defaults; 0.708 and 0.707 on
 *   the two seeds);
 * - the same at 1e-2: 0.707 and 0.839;
 * - uniform random timesteps at 6e-3 (the earlier default): 0.693 and 0.865; at 1e-2: 0.709 and 0.846 (0.727 and
 *   0.690 on the two seeds).
 */
export const DEFAULT_FINETUNE_STEPS = 25;
export const DEFAULT_RELAX_RANK = 4;
/** Adam's learning rate for the relax term, chosen with the steps and timesteps on the world's validation faces. */
export const DEFAULT_FINETUNE_LEARNING_RATE = 8e-3;
/** The relax finetune's timesteps (./timesteps.ts); the from-zero baselines keep DreamBooth's uniform draws. */
export const DEFAULT_FINETUNE_TIMESTEPS: TimestepSchedule = { kind: 'stratified', maxFraction: 0.6 };
/** The identifier in "a [V] face": clients write "[V]" in their prompts (docs/method.md). */
export const DEFAULT_IDENTIFIER = '[V]';
export const promptFor = (identifier: string) => `a ${identifier} face`;

export class PersonalizationCanceled extends Error {
  constructor(step: number) {
    super(`personalization canceled after ${step} steps`);
    this.name = 'PersonalizationCanceled';
  }
}

export interface FinetuneProgress {
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
}

export interface OptimizeOptions {
  readonly steps?: number;
  readonly learningRate?: number;
  readonly seed?: number;
  readonly identifier?: string;
  readonly onProgress?: (progress: FinetuneProgress) => void;
  readonly signal?: AbortSignal;
  /** Fixed (timestep, noise) draws on which the mean loss is measured before and after (0: none). */
  readonly evaluationSamples?: number;
  /**
   * Prior preservation: each step also fits one class sample (in turn) with weight λ, in the same batch. Reported
   * losses (and evaluations) are then instance + λ · class. Off when absent or λ = 0.
   */
  readonly prior?: PriorPreservation;
  /** Which timesteps the steps (and evaluations) fit; DreamBooth's uniform draws when absent. */
  readonly timesteps?: TimestepSchedule;
}

/** What is optimized: a relax term over fixed LiDB weights (or none), or the LiDB weights themselves. */
export type OptimizationPlan =
  | { readonly kind: 'relax'; readonly mode: 'lora' | 'lidb'; readonly rank: number; readonly fixedLidb?: readonly LidbTrainable[] }
  | { readonly kind: 'lidb' }
  | { readonly kind: 'textual-inversion'; readonly tokenIds: readonly number[] };

export interface OptimizationReport {
  readonly losses: number[];
  readonly evaluationBefore?: number;
  readonly evaluationAfter?: number;
  readonly milliseconds: number;
}

interface StepDraw {
  readonly timestep: number;
  readonly noisy: Float32Array;
  readonly noise: Float32Array;
}

/** The seeded draw of step `index` from its own named streams, so it does not depend on earlier draws. */
export function drawStep(
  model: PersonalizationModel,
  subject: EncodedSubject,
  seed: number,
  stream: string,
  index: number,
  timesteps: TimestepSchedule = UNIFORM_TIMESTEPS,
): StepDraw {
  const n = subject.mean.length;
  const timestep = timestepOfStep(timesteps, model.alphasCumprod.length, seed, stream, index);
  const z = fillGaussianFloat32(namedRng(seed, `${stream}/latent/${index}`), n);
  const noise = fillGaussianFloat32(namedRng(seed, `${stream}/noise/${index}`), n);
  const alphaBar = model.alphasCumprod[timestep]!;
  const signal = Math.sqrt(alphaBar);
  const sigma = Math.sqrt(1 - alphaBar);
  const noisy = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x0 = (subject.mean[i]! + subject.std[i]! * z[i]!) * subject.scalingFactor;
    noisy[i] = signal * x0 + sigma * noise[i]!;
  }
  return { timestep, noisy, noise };
}

function allAdapterValues(values: { unet: LidbAdapterValues; textEncoder: LidbAdapterValues }): LidbAdapterValues {
  return {
    lidb: new Map([...values.unet.lidb, ...values.textEncoder.lidb]),
    relaxLidb: new Map([...values.unet.relaxLidb, ...values.textEncoder.relaxLidb]),
    relaxLora: new Map([...values.unet.relaxLora, ...values.textEncoder.relaxLora]),
  };
}

/** The deepest folder holding every file (each an absolute path). */
function commonFolder(files: readonly string[]): string {
  const split = (file: string) => resolve(dirname(file)).split(sep);
  let common = split(files[0]!);
  for (const file of files.slice(1)) {
    const parts = split(file);
    let n = 0;
    while (n < common.length && n < parts.length && common[n] === parts[n]) n++;
    common = common.slice(0, n);
  }
  return common.join(sep) || sep;
}

function isExternalSource(source: ParamSource, weights: ModelWeights): boolean {
  const name = weights.names[0]!;
  return isExternal(source.tensor(name, weights.tensor(name).shape));
}

/**
 * The composed loss graph holds the UNet's and the text encoder's weights, and onnxruntime resolves external data
 * beside the one model file: when either network's weights are external (full-size packs), both are referenced from
 * the folder holding both checkpoints (a pack's root), where the trainer saves the gradient graph (it must be writable,
 * as for generation with external weights). Inline models are returned as they are.
 */
export function trainingLayout(model: PersonalizationModel): { model: PersonalizationModel; modelDir?: string } {
  const { unet, textEncoder } = model.paramSources;
  if (!isExternalSource(unet, model.unet.weights) && !isExternalSource(textEncoder, model.textEncoder.weights)) return { model };
  const files = [model.unet.weights, model.textEncoder.weights].flatMap((weights) => weights.names.map((name) => weights.tensor(name).file));
  const modelDir = commonFolder(files);
  const paramSources = {
    ...model.paramSources,
    unet: externalParams(model.unet.weights, modelDir),
    textEncoder: externalParams(model.textEncoder.weights, modelDir),
  };
  return { model: { ...model, paramSources }, modelDir };
}

/** With prior preservation: a batch of two (the instance, a class sample) and a weighted loss. */
function buildLossGraphFor(model: PersonalizationModel, plan: OptimizationPlan, withPrior: boolean) {
  const batching = withPrior ? { batch: 2, sampleWeights: true } : {};
  if (plan.kind === 'textual-inversion') {
    const g = new BindingGraph('textual_inversion');
    const { vocabSize, hiddenSize } = model.textEncoder.config;
    g.redirectParam(TOKEN_EMBEDDING_PARAM, (table) => withTrainableRows(g, table, plan.tokenIds, vocabSize, hiddenSize));
    const built = buildDiffusionLossGraph(model, { lidb: 'none', graph: g, ...batching });
    return { ...built, loss: g.output(built.loss, LOSS_OUTPUT) };
  }
  return buildDiffusionLossGraph(model, {
    lidb: plan.kind === 'lidb' || plan.fixedLidb ? 'input' : 'none',
    ...(plan.kind === 'relax' ? { relax: { mode: plan.mode, rank: plan.rank } } : {}),
    ...batching,
  });
}

type BuiltLossGraph = ReturnType<typeof buildLossGraphFor>;

/**
 * Loss graphs by model and plan shape: every personalization of a loaded model with the same plan reuses one graph,
 * and with it the trainer's gradient graph and session (built once: autodiff and serializing the inline weights cost
 * more than a dozen finetune steps). The values it holds (fixed LiDB factors, token ids' rows) are feeds, not weights.
 */
const lossGraphs = new WeakMap<PersonalizationModel, Map<string, BuiltLossGraph>>();

/** What shapes a plan's loss graph (the fixed LiDB factors' values are feeds, so only their presence counts). */
function planKey(plan: OptimizationPlan, withPrior: boolean): string {
  const shape =
    plan.kind === 'relax'
      ? { kind: plan.kind, mode: plan.mode, rank: plan.rank, fixedLidb: plan.fixedLidb !== undefined }
      : plan.kind === 'textual-inversion'
        ? { kind: plan.kind, tokenIds: plan.tokenIds }
        : { kind: plan.kind };
  return JSON.stringify({ ...shape, withPrior });
}

function lossGraphFor(model: PersonalizationModel, trainingModel: PersonalizationModel, plan: OptimizationPlan, withPrior: boolean): BuiltLossGraph {
  let byPlan = lossGraphs.get(model);
  if (!byPlan) lossGraphs.set(model, (byPlan = new Map()));
  const key = planKey(plan, withPrior);
  let built = byPlan.get(key);
  if (!built) byPlan.set(key, (built = buildLossGraphFor(trainingModel, plan, withPrior)));
  return built;
}

/** LoRA-style start: the down factor N(0, 1/fan_in) (so each row maps x to O(|x|)), the up factor zero: ΔW starts at 0. */
function initialTrainables(model: PersonalizationModel, plan: Exclude<OptimizationPlan, { kind: 'textual-inversion' }>, values: LidbAdapterValues, seed: number): ParamSet {
  const params: ParamSet = {};
  const down = (name: string, n: number, fanIn: number) => fillGaussianFloat32(namedRng(seed, `finetune-init/${name}`), n, 1 / Math.sqrt(fanIn));
  model.layers.forEach((layer, i) => {
    const basis = model.bases[i]!;
    if (plan.kind === 'lidb') {
      const v = values.lidb.get(layer.name)!;
      params[v.aTrain.name] = down(v.aTrain.name, model.lidb.r * basis.aEff, basis.aEff);
      params[v.bTrain.name] = new Float32Array(basis.bEff * model.lidb.r);
    } else if (plan.mode === 'lidb') {
      const v = values.relaxLidb.get(layer.name)!;
      params[v.aTrain.name] = down(v.aTrain.name, plan.rank * basis.aEff, basis.aEff);
      params[v.bTrain.name] = new Float32Array(basis.bEff * plan.rank);
    } else {
      const v = values.relaxLora.get(layer.name)!;
      params[v.down.name] = down(v.down.name, plan.rank * layer.inFeatures, layer.inFeatures);
      params[v.up.name] = new Float32Array(layer.outFeatures * plan.rank);
    }
  });
  return params;
}

function stepFeeds(ids: BigInt64Array, draw: StepDraw, shape: readonly number[]): RuntimeFeeds {
  return {
    [LOSS_INPUTS.inputIds]: int64Tensor(ids, [1, ids.length]),
    [LOSS_INPUTS.noisyLatents]: float32Tensor(draw.noisy, shape),
    [LOSS_INPUTS.timestep]: float32Tensor(Float32Array.of(draw.timestep), [1]),
    [LOSS_INPUTS.target]: float32Tensor(draw.noise, shape),
  };
}

/** The instance's draw and a class sample's (own prompt, own draw), batched, weighted [1, λ]. */
function priorStepFeeds(ids: BigInt64Array, draw: StepDraw, classIds: BigInt64Array, classDraw: StepDraw, weight: number, shape: readonly number[]): RuntimeFeeds {
  const cat = (a: Float32Array, b: Float32Array) => {
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };
  const pairIds = new BigInt64Array(ids.length * 2);
  pairIds.set(ids);
  pairIds.set(classIds, ids.length);
  return {
    [LOSS_INPUTS.inputIds]: int64Tensor(pairIds, [2, ids.length]),
    [LOSS_INPUTS.noisyLatents]: float32Tensor(cat(draw.noisy, classDraw.noisy), shape),
    [LOSS_INPUTS.timestep]: float32Tensor(Float32Array.of(draw.timestep, classDraw.timestep), [2]),
    [LOSS_INPUTS.target]: float32Tensor(cat(draw.noise, classDraw.noise), shape),
    [LOSS_INPUTS.sampleWeights]: float32Tensor(Float32Array.of(1, weight), [2]),
  };
}

async function meanEvaluationLoss(trainer: Trainer, feedsAt: (i: number) => RuntimeFeeds, samples: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < samples; i++) total += (await trainer.loss(feedsAt(i))).loss;
  return total / samples;
}

/**
 * The photo step `index` fits: the photos in turn, so every photo is fitted equally often and each step still has a
 * batch of one (the loss graph and its cost per step are those of a single photo).
 */
export function photoOfStep<T>(photos: readonly T[], index: number): T {
  if (photos.length === 0) throw new Error('a subject needs at least one photo');
  return photos[index % photos.length]!;
}

/**
 * Runs the plan's Adam steps on one subject (one photo, or several taken in turn by `photoOfStep`); returns the
 * optimized factors (by graph input name) and a report.
 */
export async function optimizeOnSubject(
  model: PersonalizationModel,
  subject: EncodedSubject | readonly EncodedSubject[],
  plan: OptimizationPlan,
  options: OptimizeOptions,
): Promise<{ params: ParamSet; report: OptimizationReport; values: LidbAdapterValues }> {
  const started = performance.now();
  const photos: readonly EncodedSubject[] = Array.isArray(subject) ? subject : [subject as EncodedSubject];
  if (photos.length === 0) throw new Error('a subject needs at least one photo');
  const steps = options.steps ?? DEFAULT_FINETUNE_STEPS;
  const seed = options.seed ?? 0;
  const layout = trainingLayout(model);
  const prior = options.prior && options.prior.weight > 0 ? options.prior : undefined;
  if (prior && prior.samples.length === 0) throw new Error('prior preservation needs at least one class sample');
  const built = lossGraphFor(model, layout.model, plan, prior !== undefined);
  const values = allAdapterValues(built.adapters);
  const params =
    plan.kind === 'textual-inversion' ? { [TI_EMBEDDING_INPUT]: embeddingRows(model, plan.tokenIds) } : initialTrainables(model, plan, values, seed);
  const fixed: RuntimeFeeds = {};
  if (plan.kind === 'relax' && plan.fixedLidb) {
    const lidb = new Map(model.layers.map((layer, i) => [layer.name, plan.fixedLidb![i]!]));
    for (const [name, feed] of Object.entries(lidbAdapterFeeds({ lidb: values.lidb, relaxLidb: new Map(), relaxLora: new Map() }, { lidb }))) {
      fixed[name] = float32Tensor(feed.data, feed.dims);
    }
  }
  const tokenIds = (text: string) => BigInt64Array.from(model.tokenizer.tokenize(text), (id) => BigInt(id));
  const ids = tokenIds(promptFor(options.identifier ?? DEFAULT_IDENTIFIER));
  const classIds = prior?.samples.map((sample) => tokenIds(sample.prompt)) ?? [];
  const timesteps = options.timesteps ?? UNIFORM_TIMESTEPS;
  checkTimestepSchedule(timesteps);
  const feedsFor = (stream: string) => (index: number) => {
    const draw = drawStep(model, photoOfStep(photos, index), seed, stream, index, timesteps);
    if (!prior) return { ...fixed, ...stepFeeds(ids, draw, built.latentShape) };
    const c = index % prior.samples.length;
    const classDraw = drawStep(model, prior.samples[c]!.latent, seed, `${stream}/prior`, index, timesteps);
    return { ...fixed, ...priorStepFeeds(ids, draw, classIds[c]!, classDraw, prior.weight, built.latentShape) };
  };
  const trainFeeds = feedsFor('finetune');
  const evalFeeds = feedsFor('evaluation');

  const trainer = await createTrainer({
    graph: built.graph,
    loss: built.loss,
    params,
    optimizer: adam(),
    schedule: constantSchedule(options.learningRate ?? DEFAULT_FINETUNE_LEARNING_RATE),
    ...(layout.modelDir ? { saveTo: { modelDir: layout.modelDir } } : {}),
  });
  try {
    const samples = options.evaluationSamples ?? 0;
    const evaluationBefore = samples > 0 ? await meanEvaluationLoss(trainer, evalFeeds, samples) : undefined;
    const losses: number[] = [];
    for (let step = 0; step < steps; step++) {
      if (options.signal?.aborted) throw new PersonalizationCanceled(step);
      const result = await trainer.step(trainFeeds(step));
      losses.push(result.loss);
      options.onProgress?.({ step: step + 1, steps, loss: result.loss });
    }
    const evaluationAfter = samples > 0 ? await meanEvaluationLoss(trainer, evalFeeds, samples) : undefined;
    const { params: trained } = await trainer.read();
    return {
      params: trained,
      values,
      report: {
        losses,
        ...(evaluationBefore !== undefined ? { evaluationBefore } : {}),
        ...(evaluationAfter !== undefined ? { evaluationAfter } : {}),
        milliseconds: performance.now() - started,
      },
    };
  } finally {
    await trainer.close();
  }
}

/** Collects the trained relax term per layer from the optimized parameters. */
export function relaxFromParams(model: PersonalizationModel, mode: 'lora' | 'lidb', rank: number, params: ParamSet, values: LidbAdapterValues): RelaxTerm {
  if (mode === 'lidb') {
    const factors = model.layers.map((layer): LidbTrainable => {
      const v = values.relaxLidb.get(layer.name)!;
      return { aTrain: params[v.aTrain.name]!, bTrain: params[v.bTrain.name]! };
    });
    return { mode, rank, factors };
  }
  const factors = model.layers.map((layer): LoraFactors => {
    const v = values.relaxLora.get(layer.name)!;
    return { rank, down: params[v.down.name]!, up: params[v.up.name]! };
  });
  return { mode, rank, factors };
}

export function lidbFromParams(model: PersonalizationModel, params: ParamSet, values: LidbAdapterValues): LidbTrainable[] {
  return model.layers.map((layer) => {
    const v = values.lidb.get(layer.name)!;
    return { aTrain: params[v.aTrain.name]!, bTrain: params[v.bTrain.name]! };
  });
}

export function weightsOf(
  model: PersonalizationModel,
  method: PersonalizationMethod,
  steps: number,
  parts: { lidb?: readonly LidbTrainable[]; relax?: RelaxTerm; textualInversion?: PersonalizedWeights['textualInversion'] },
): PersonalizedWeights {
  return {
    ...(parts.textualInversion ? { textualInversion: parts.textualInversion } : {}),
    settings: model.lidb,
    selection: model.selection,
    layers: model.layers,
    ...(parts.lidb ? { lidb: parts.lidb } : {}),
    ...(parts.relax ? { relax: parts.relax } : {}),
    meta: { baseModelId: model.id, baseModelSha256: model.sha256, method, steps },
  };
}
