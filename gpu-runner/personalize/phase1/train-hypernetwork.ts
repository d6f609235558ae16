// Phase 1 (b): train the hypernetwork on many identities with α·diffusion loss + β·L2 to their pre-optimized LiDB
// weights (β = 0: diffusion loss only) + γ·attribute cross-entropy where faces carry labels, batched, with checkpoints,
// resume and a held-out validation loss. Where a face comes with views (other captioned images of the same person), the
// diffusion loss fits one of those per step instead of the photo the encoder sees: the prediction must then carry the
// person, not the photo's background, accessory or style (docs/hypernetwork.md).
import { adam } from '../../onnx/optim/adam.ts';
import { constantSchedule, cosineSchedule } from '../../onnx/optim/schedule.ts';
import { createTrainer, type Trainer } from '../../onnx/training/trainer.ts';
import type { ParamSet } from '../../onnx/optim/types.ts';
import { float32Tensor, int64Tensor, type RuntimeFeeds } from '../../onnx/runtime/tensor.ts';
import { namedRng } from '../../random/index.ts';
import { type FaceBox, preprocessFace, type RgbPixels } from '../face/preprocess.ts';
import { DEFAULT_IDENTIFIER, drawStep, promptFor, trainingLayout } from '../finetune/fast-finetune.ts';
import { LOSS_INPUTS } from '../finetune/diffusion-loss-graph.ts';
import { type EncodedSubject, encodeSubject } from '../finetune/subject.ts';
import { HYPERNETWORK_INPUT } from '../hypernetwork/build.ts';
import { PIXEL_NORMALIZATION } from '../hypernetwork/config.ts';
import type { LidbTrainable } from '../lidb/delta.ts';
import type { PersonalizationModel } from '../model.ts';
import { ATTRIBUTE_LABELS_INPUT, ATTRIBUTE_PROBE, attributeClassCount, initAttributeProbe } from './attribute-probe.ts';
import { type NoiseTeacher, openNoiseTeacher } from './teacher.ts';
import { buildPhase1Graph, PHASE1_OUTPUTS, targetInputNames } from './training-graph.ts';

/** Adam's learning rate for the hypernetwork; a setting (the paper does not state one for its ViT-H). */
export const DEFAULT_PHASE1_LEARNING_RATE = 1e-4;

/** Another image of the same person with its own caption (tokenized): what the diffusion loss fits. */
export interface Phase1View {
  readonly latent: EncodedSubject;
  readonly promptIds: readonly number[];
  /** A caption describing the person in words (tokenized): the base model's ε under it is the teacher's target. */
  readonly teacherPromptIds?: readonly number[];
}

export interface Phase1Subject {
  /** The face at the encoder's size, encoder-normalized, [3, S, S]. */
  readonly pixels: Float32Array;
  readonly latent: EncodedSubject;
  /** Other captioned images of the same person; when present each step fits one of them (seeded) instead of `latent`. */
  readonly views?: readonly Phase1View[];
  /** One-hot attribute labels, the groups' classes concatenated (needed when γ > 0). */
  readonly labels?: Float32Array;
  /** Pre-optimized LiDB weights θ* per adapted layer (needed when β > 0). */
  readonly target?: readonly LidbTrainable[];
}

export async function preparePhase1Subject(
  model: PersonalizationModel,
  image: Uint8Array | RgbPixels,
  options: { box?: FaceBox; target?: readonly LidbTrainable[]; views?: readonly Phase1View[]; labels?: Float32Array } = {},
): Promise<Phase1Subject> {
  return {
    pixels: await encoderPixels(model, image, options.box),
    latent: await encodeSubject(model, image, options.box),
    ...(options.target ? { target: options.target } : {}),
    ...(options.views ? { views: options.views } : {}),
    ...(options.labels ? { labels: options.labels } : {}),
  };
}

/** The face as the hypernetwork's encoder reads it: cropped, resized, normalized, [3, S, S]. */
export async function encoderPixels(model: PersonalizationModel, image: Uint8Array | RgbPixels, box?: FaceBox): Promise<Float32Array> {
  const encoder = model.hypernetwork?.config.encoder;
  if (!encoder) throw new Error('phase 1 needs a hypernetwork config in the model');
  return (await preprocessFace(image, { size: encoder.imageSize, ...PIXEL_NORMALIZATION[encoder.normalization], ...(box ? { box } : {}) })).pixels;
}

/** A captioned view: the image encoded by the VAE, the caption tokenized as the diffusion loss reads it. */
export async function preparePhase1View(model: PersonalizationModel, image: Uint8Array | RgbPixels, caption: string, teacherCaption?: string): Promise<Phase1View> {
  return {
    latent: await encodeSubject(model, image),
    promptIds: model.tokenizer.tokenize(caption),
    ...(teacherCaption ? { teacherPromptIds: model.tokenizer.tokenize(teacherCaption) } : {}),
  };
}

export interface Phase1Progress {
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
  readonly diffusionLoss: number;
  readonly l2Loss?: number;
  readonly attributeLoss?: number;
  readonly validationLoss?: number;
}

export interface Phase1Options {
  readonly steps: number;
  readonly batchSize?: number;
  readonly learningRate?: number;
  /** `cosine`: half-cosine decay to a tenth of the rate at `steps` (a function of the step: resumes stay exact). */
  readonly schedule?: 'constant' | 'cosine';
  readonly alpha?: number;
  readonly beta?: number;
  /** Weight of the attribute probe's cross-entropy (γ); > 0 needs `attributeGroups` and every subject's labels. */
  readonly gamma?: number;
  readonly attributeGroups?: readonly number[];
  /**
   * Share of the diffusion target taken from the base model's prediction under the view's descriptive caption (w):
   * target = w·ε_teacher + (1 − w)·ε. 0 or absent: the sampled noise alone (DreamBooth's loss).
   */
  readonly teacherWeight?: number;
  readonly seed?: number;
  readonly identifier?: string;
  /** Training checkpoint (parameters + Adam state + step), written every `checkpointEvery` steps and at the end. */
  readonly checkpointPath?: string;
  readonly checkpointEvery?: number;
  /** Continue from `checkpointPath` (its step count, parameters and optimizer state). */
  readonly resume?: boolean;
  /** Every this many steps (and at the end), the mean diffusion loss on the validation subjects. */
  readonly validationEvery?: number;
  readonly onProgress?: (progress: Phase1Progress) => void;
}

export interface Phase1Result {
  readonly params: Map<string, Float32Array>;
  readonly losses: number[];
  readonly validation: { step: number; loss: number }[];
}

function batchFeeds(
  model: PersonalizationModel,
  subjects: readonly Phase1Subject[],
  picks: readonly number[],
  seed: number,
  stream: string,
  index: number,
  ids: readonly number[],
  /** `required`: every subject's θ* (training with β > 0); `zeros`: placeholders (validation reads the diffusion loss only). */
  targets: 'required' | 'zeros' | 'none',
  /** Classes of the attribute labels fed (0: the graph has no attribute probe); validation feeds zeros where absent. */
  labelClasses: number,
  labelsRequired = true,
): { feeds: RuntimeFeeds; teacherIds?: number[]; teacherMask: boolean[] } {
  const encoderSize = model.hypernetwork!.config.encoder.imageSize;
  const batch = picks.length;
  const first = subjects[picks[0]!]!;
  const latentSize = first.latent.mean.length;
  const pixels = new Float32Array(batch * 3 * encoderSize * encoderSize);
  const noisy = new Float32Array(batch * latentSize);
  const noise = new Float32Array(batch * latentSize);
  const timesteps = new Float32Array(batch);
  const promptIds: number[] = [];
  const teacherIds: number[] = [];
  const teacherMask: boolean[] = [];
  const labels = new Float32Array(batch * labelClasses);
  picks.forEach((pick, j) => {
    const subject = subjects[pick]!;
    pixels.set(subject.pixels, j * subject.pixels.length);
    const view = subject.views && subject.views.length > 0 ? subject.views[namedRng(seed, `${stream}/${j}/view/${index}`).nextBelow(subject.views.length)]! : undefined;
    promptIds.push(...(view?.promptIds ?? ids));
    teacherIds.push(...(view?.teacherPromptIds ?? view?.promptIds ?? ids));
    teacherMask.push(view?.teacherPromptIds !== undefined);
    if (labelClasses > 0) {
      if (subject.labels && subject.labels.length === labelClasses) labels.set(subject.labels, j * labelClasses);
      else if (labelsRequired) throw new Error(`phase 1: subject ${pick} needs ${labelClasses} attribute labels when gamma > 0`);
    }
    const draw = drawStep(model, view?.latent ?? subject.latent, seed, `${stream}/${j}`, index);
    noisy.set(draw.noisy, j * latentSize);
    noise.set(draw.noise, j * latentSize);
    timesteps[j] = draw.timestep;
  });
  const latentShape = [batch, ...first.latent.shape.slice(1)];
  const feeds: RuntimeFeeds = {
    [HYPERNETWORK_INPUT]: float32Tensor(pixels, [batch, 3, encoderSize, encoderSize]),
    [LOSS_INPUTS.inputIds]: int64Tensor(BigInt64Array.from(promptIds, (id) => BigInt(id)), [batch, ids.length]),
    [LOSS_INPUTS.noisyLatents]: float32Tensor(noisy, latentShape),
    [LOSS_INPUTS.timestep]: float32Tensor(timesteps, [batch]),
    [LOSS_INPUTS.target]: float32Tensor(noise, latentShape),
  };
  if (promptIds.length !== batch * ids.length) throw new Error('phase 1: every caption must tokenize to the text encoder\'s context length');
  if (labelClasses > 0) feeds[ATTRIBUTE_LABELS_INPUT] = float32Tensor(labels, [batch, labelClasses]);
  if (targets !== 'none') {
    model.layers.forEach((layer, i) => {
      const head = model.hypernetwork!.heads[i]!;
      const names = targetInputNames(layer.name);
      const a = new Float32Array(batch * head.aSize);
      const b = new Float32Array(batch * head.bSize);
      picks.forEach((pick, j) => {
        const target = subjects[pick]!.target?.[i];
        if (!target && targets === 'required') throw new Error(`phase 1: subject ${pick} has no pre-optimized weights, needed when beta > 0`);
        if (target) {
          a.set(target.aTrain, j * head.aSize);
          b.set(target.bTrain, j * head.bSize);
        }
      });
      feeds[names.aTrain] = float32Tensor(a, [batch, ...head.aShape]);
      feeds[names.bTrain] = float32Tensor(b, [batch, ...head.bShape]);
    });
  }
  return { feeds, ...(teacherMask.some(Boolean) ? { teacherIds } : {}), teacherMask };
}

/** Replaces the noise target of the samples with a teacher caption by w·ε_teacher + (1 − w)·ε. */
async function withTeacherTarget(teacher: NoiseTeacher | undefined, weight: number, batch: ReturnType<typeof batchFeeds>): Promise<RuntimeFeeds> {
  if (!teacher || weight === 0 || !batch.teacherIds) return batch.feeds;
  const feeds = batch.feeds;
  const noise = feeds[LOSS_INPUTS.target]!.data as Float32Array;
  const predicted = await teacher.predict(batch.teacherIds, feeds[LOSS_INPUTS.noisyLatents]!.data as Float32Array, feeds[LOSS_INPUTS.timestep]!.data as Float32Array);
  const per = noise.length / batch.teacherMask.length;
  const target = Float32Array.from(noise);
  batch.teacherMask.forEach((on, j) => {
    if (!on) return;
    for (let i = j * per; i < (j + 1) * per; i++) target[i] = weight * predicted[i]! + (1 - weight) * noise[i]!;
  });
  return { ...feeds, [LOSS_INPUTS.target]: float32Tensor(target, feeds[LOSS_INPUTS.target]!.dims as number[]) };
}

function scheduleFor(options: Phase1Options) {
  const lr = options.learningRate ?? DEFAULT_PHASE1_LEARNING_RATE;
  return options.schedule === 'cosine' ? cosineSchedule({ lr, totalSteps: options.steps, minLr: lr / 10 }) : constantSchedule(lr);
}

/** The held-out diffusion loss (held-out identities have no pre-optimized weights, so the L2 term is not part of it). */
async function validationLoss(trainer: Trainer, feedsAt: (i: number) => Promise<RuntimeFeeds>, batches: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < batches; i++) total += Number((await trainer.loss(await feedsAt(i))).outputs[PHASE1_OUTPUTS.diffusion]!.data[0]);
  return total / batches;
}

export async function trainHypernetwork(
  model: PersonalizationModel,
  train: readonly Phase1Subject[],
  validation: readonly Phase1Subject[],
  options: Phase1Options,
): Promise<Phase1Result> {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error('phase 1 needs a hypernetwork (config and initial parameters) in the model');
  if (train.length === 0) throw new Error('phase 1 needs at least one training subject');
  const batch = options.batchSize ?? 1;
  const alpha = options.alpha ?? 1;
  const beta = options.beta ?? 0;
  const seed = options.seed ?? 0;
  const gamma = options.gamma ?? 0;
  const attributeGroups = options.attributeGroups ?? [];
  const labelClasses = gamma > 0 ? attributeClassCount(attributeGroups) : 0;
  // Full-size packs keep the UNet and text-encoder weights external: the graph references them from the pack root,
  // where the trainer saves its gradient graph (as the fast finetune does).
  const layout = trainingLayout(model);
  const built = buildPhase1Graph(layout.model, { batch, alpha, beta, gamma, attributeGroups });
  // The probe starts fresh (a resume replaces it with its trained value); it is never written to the checkpoint.
  const params: ParamSet = gamma > 0 ? initAttributeProbe(attributeGroups, hyper.config.encoder.width, seed) : {};
  for (const name of built.parameterNames) {
    if (name === ATTRIBUTE_PROBE.weight || name === ATTRIBUTE_PROBE.bias) continue;
    const value = hyper.params.get(name);
    if (!value) throw new Error(`phase 1: no initial value for hypernetwork parameter "${name}"`);
    params[name] = Float32Array.from(value);
  }
  const ids = model.tokenizer.tokenize(promptFor(options.identifier ?? DEFAULT_IDENTIFIER));
  const extraOutputs = [PHASE1_OUTPUTS.diffusion, ...(beta > 0 ? [PHASE1_OUTPUTS.l2] : []), ...(gamma > 0 ? [PHASE1_OUTPUTS.attributes] : [])];
  const trainer = await createTrainer({
    graph: built.graph,
    loss: built.loss,
    params,
    optimizer: adam(),
    schedule: scheduleFor(options),
    extraOutputs,
    ...(layout.modelDir ? { saveTo: { modelDir: layout.modelDir } } : {}),
    ...(options.resume && options.checkpointPath ? { resumeFrom: options.checkpointPath } : {}),
  });
  const picksFor = (step: number) => {
    const rng = namedRng(seed, `phase1/batch/${step}`);
    return Array.from({ length: batch }, () => rng.nextBelow(train.length));
  };
  const validationBatches = Math.ceil(validation.length / batch);
  const teacherWeight = options.teacherWeight ?? 0;
  if (teacherWeight < 0 || teacherWeight > 1) throw new Error(`phase 1: teacherWeight must be in [0, 1], got ${teacherWeight}`);
  const teacher = teacherWeight > 0 ? await openNoiseTeacher(model, batch) : undefined;
  const validationFeeds = async (i: number) =>
    withTeacherTarget(teacher, teacherWeight, batchFeeds(model, validation, Array.from({ length: batch }, (_, j) => (i * batch + j) % validation.length), seed, 'phase1/validation', i, ids, beta > 0 ? 'zeros' : 'none', labelClasses, false));
  const losses: number[] = [];
  const validationLosses: { step: number; loss: number }[] = [];
  try {
    for (let step = trainer.stepCount; step < options.steps; step++) {
      const result = await trainer.step(await withTeacherTarget(teacher, teacherWeight, batchFeeds(model, train, picksFor(step), seed, 'phase1/train', step, ids, beta > 0 ? 'required' : 'none', labelClasses)));
      losses.push(result.loss);
      const done = step + 1;
      let validationValue: number | undefined;
      if (validation.length > 0 && options.validationEvery && (done % options.validationEvery === 0 || done === options.steps)) {
        validationValue = await validationLoss(trainer, validationFeeds, validationBatches);
        validationLosses.push({ step: done, loss: validationValue });
      }
      if (options.checkpointPath && ((options.checkpointEvery && done % options.checkpointEvery === 0) || done === options.steps)) {
        await trainer.saveCheckpoint(options.checkpointPath, { phase: 'hypernetwork' });
      }
      const diffusionLoss = result.outputs[PHASE1_OUTPUTS.diffusion]?.data[0];
      const l2Loss = result.outputs[PHASE1_OUTPUTS.l2]?.data[0];
      const attributeLoss = result.outputs[PHASE1_OUTPUTS.attributes]?.data[0];
      options.onProgress?.({
        step: done,
        steps: options.steps,
        loss: result.loss,
        diffusionLoss: Number(diffusionLoss),
        ...(l2Loss !== undefined ? { l2Loss: Number(l2Loss) } : {}),
        ...(attributeLoss !== undefined ? { attributeLoss: Number(attributeLoss) } : {}),
        ...(validationValue !== undefined ? { validationLoss: validationValue } : {}),
      });
    }
    const { params: trained } = await trainer.read();
    return { params: new Map(Object.entries(trained)), losses, validation: validationLosses };
  } finally {
    await trainer.close();
    await teacher?.close();
  }
}
