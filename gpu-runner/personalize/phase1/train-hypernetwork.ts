// Phase 1 (b): train the hypernetwork on many identities with α·diffusion loss + β·L2 to their pre-optimized LiDB
// weights (β = 0: diffusion loss only), batched, with checkpoints, resume and a held-out validation loss.
import { adam } from '../../onnx/optim/adam.ts';
import { constantSchedule } from '../../onnx/optim/schedule.ts';
import { createTrainer, type Trainer } from '../../onnx/optim/trainer.ts';
import type { ParamSet } from '../../onnx/optim/types.ts';
import { float32Tensor, int64Tensor, type RuntimeFeeds } from '../../onnx/runtime/tensor.ts';
import { namedRng } from '../../random/index.ts';
import { type FaceBox, preprocessFace, type RgbPixels } from '../face/preprocess.ts';
import { DEFAULT_IDENTIFIER, drawStep, promptFor } from '../finetune/fast-finetune.ts';
import { LOSS_INPUTS } from '../finetune/diffusion-loss-graph.ts';
import { type EncodedSubject, encodeSubject } from '../finetune/subject.ts';
import { HYPERNETWORK_INPUT } from '../hypernetwork/build.ts';
import { PIXEL_NORMALIZATION } from '../hypernetwork/config.ts';
import type { LidbTrainable } from '../lidb/delta.ts';
import type { PersonalizationModel } from '../model.ts';
import { buildPhase1Graph, PHASE1_OUTPUTS, targetInputNames } from './training-graph.ts';

/** Adam's learning rate for the hypernetwork; a setting (the paper does not state one for its ViT-H). */
export const DEFAULT_PHASE1_LEARNING_RATE = 1e-4;

export interface Phase1Subject {
  /** The face at the encoder's size, encoder-normalized, [3, S, S]. */
  readonly pixels: Float32Array;
  readonly latent: EncodedSubject;
  /** Pre-optimized LiDB weights θ* per adapted layer (needed when β > 0). */
  readonly target?: readonly LidbTrainable[];
}

export async function preparePhase1Subject(
  model: PersonalizationModel,
  image: Uint8Array | RgbPixels,
  options: { box?: FaceBox; target?: readonly LidbTrainable[] } = {},
): Promise<Phase1Subject> {
  const encoder = model.hypernetwork?.config.encoder;
  if (!encoder) throw new Error('phase 1 needs a hypernetwork config in the model');
  const face = await preprocessFace(image, { size: encoder.imageSize, ...PIXEL_NORMALIZATION[encoder.normalization], ...(options.box ? { box: options.box } : {}) });
  return { pixels: face.pixels, latent: await encodeSubject(model, image, options.box), ...(options.target ? { target: options.target } : {}) };
}

export interface Phase1Progress {
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
  readonly diffusionLoss: number;
  readonly l2Loss?: number;
  readonly validationLoss?: number;
}

export interface Phase1Options {
  readonly steps: number;
  readonly batchSize?: number;
  readonly learningRate?: number;
  readonly alpha?: number;
  readonly beta?: number;
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
): RuntimeFeeds {
  const encoderSize = model.hypernetwork!.config.encoder.imageSize;
  const batch = picks.length;
  const first = subjects[picks[0]!]!;
  const latentSize = first.latent.mean.length;
  const pixels = new Float32Array(batch * 3 * encoderSize * encoderSize);
  const noisy = new Float32Array(batch * latentSize);
  const noise = new Float32Array(batch * latentSize);
  const timesteps = new Float32Array(batch);
  picks.forEach((pick, j) => {
    const subject = subjects[pick]!;
    pixels.set(subject.pixels, j * subject.pixels.length);
    const draw = drawStep(model, subject.latent, seed, `${stream}/${j}`, index);
    noisy.set(draw.noisy, j * latentSize);
    noise.set(draw.noise, j * latentSize);
    timesteps[j] = draw.timestep;
  });
  const latentShape = [batch, ...first.latent.shape.slice(1)];
  const feeds: RuntimeFeeds = {
    [HYPERNETWORK_INPUT]: float32Tensor(pixels, [batch, 3, encoderSize, encoderSize]),
    [LOSS_INPUTS.inputIds]: int64Tensor(BigInt64Array.from({ length: batch * ids.length }, (_, i) => BigInt(ids[i % ids.length]!)), [batch, ids.length]),
    [LOSS_INPUTS.noisyLatents]: float32Tensor(noisy, latentShape),
    [LOSS_INPUTS.timestep]: float32Tensor(timesteps, [batch]),
    [LOSS_INPUTS.target]: float32Tensor(noise, latentShape),
  };
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
  return feeds;
}

/** The held-out diffusion loss (held-out identities have no pre-optimized weights, so the L2 term is not part of it). */
async function validationLoss(trainer: Trainer, feedsAt: (i: number) => RuntimeFeeds, batches: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < batches; i++) total += Number((await trainer.loss(feedsAt(i))).outputs[PHASE1_OUTPUTS.diffusion]!.data[0]);
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
  const built = buildPhase1Graph(model, { batch, alpha, beta });
  const params: ParamSet = {};
  for (const name of built.parameterNames) {
    const value = hyper.params.get(name);
    if (!value) throw new Error(`phase 1: no initial value for hypernetwork parameter "${name}"`);
    params[name] = Float32Array.from(value);
  }
  const ids = model.tokenizer.tokenize(promptFor(options.identifier ?? DEFAULT_IDENTIFIER));
  const extraOutputs = beta > 0 ? [PHASE1_OUTPUTS.diffusion, PHASE1_OUTPUTS.l2] : [PHASE1_OUTPUTS.diffusion];
  const trainer = await createTrainer({
    graph: built.graph,
    loss: built.loss,
    params,
    optimizer: adam(),
    schedule: constantSchedule(options.learningRate ?? DEFAULT_PHASE1_LEARNING_RATE),
    extraOutputs,
    ...(options.resume && options.checkpointPath ? { resumeFrom: options.checkpointPath } : {}),
  });
  const picksFor = (step: number) => {
    const rng = namedRng(seed, `phase1/batch/${step}`);
    return Array.from({ length: batch }, () => rng.nextBelow(train.length));
  };
  const validationBatches = Math.ceil(validation.length / batch);
  const validationFeeds = (i: number) =>
    batchFeeds(model, validation, Array.from({ length: batch }, (_, j) => (i * batch + j) % validation.length), seed, 'phase1/validation', i, ids, beta > 0 ? 'zeros' : 'none');
  const losses: number[] = [];
  const validationLosses: { step: number; loss: number }[] = [];
  try {
    for (let step = trainer.stepCount; step < options.steps; step++) {
      const result = await trainer.step(batchFeeds(model, train, picksFor(step), seed, 'phase1/train', step, ids, beta > 0 ? 'required' : 'none'));
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
      options.onProgress?.({
        step: done,
        steps: options.steps,
        loss: result.loss,
        diffusionLoss: Number(diffusionLoss),
        ...(l2Loss !== undefined ? { l2Loss: Number(l2Loss) } : {}),
        ...(validationValue !== undefined ? { validationLoss: validationValue } : {}),
      });
    }
    const { params: trained } = await trainer.read();
    return { params: new Map(Object.entries(trained)), losses, validation: validationLosses };
  } finally {
    await trainer.close();
  }
}
