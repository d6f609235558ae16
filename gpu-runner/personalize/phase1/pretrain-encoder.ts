// Phase 1 (0): pretrain the hypernetwork's face encoder on labelled faces with an attribute probe, so that phase 1
// starts from an encoder that already reads who is in a photo, as the paper's starts from a pretrained face ViT
// (HyperDreamBooth §3.2). One small graph (ViT → class token → probe → cross-entropy), far cheaper per step than
// phase 1's graph through the text encoder and UNet; it changes only the `encoder.*` parameters.
import { Graph } from '../../onnx/index.ts';
import { adam } from '../../onnx/optim/adam.ts';
import { cosineSchedule } from '../../onnx/optim/schedule.ts';
import { createTrainer } from '../../onnx/training/trainer.ts';
import type { ParamSet } from '../../onnx/optim/types.ts';
import { float32Tensor, type RuntimeFeeds } from '../../onnx/runtime/tensor.ts';
import { namedRng } from '../../random/index.ts';
import { buildVitEncoder, classToken, HYPERNETWORK_INPUT, inputParams } from '../hypernetwork/build.ts';
import type { HypernetworkConfig } from '../hypernetwork/config.ts';
import { ATTRIBUTE_LABELS_INPUT, ATTRIBUTE_PROBE, attributeAccuracy, attributeClassCount, buildAttributeProbe, initAttributeProbe } from './attribute-probe.ts';

export interface LabelledFace {
  /** The face at the encoder's size, encoder-normalized, [3, S, S]. */
  readonly pixels: Float32Array;
  /** One-hot labels, the groups' classes concatenated. */
  readonly labels: Float32Array;
}

export interface EncoderPretrainOptions {
  readonly steps: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly groups: readonly number[];
  readonly seed?: number;
  /** Held-out faces: their attribute accuracy is measured every `validationEvery` steps and at the end. */
  readonly validation?: readonly LabelledFace[];
  readonly validationEvery?: number;
  readonly onProgress?: (progress: { step: number; steps: number; loss: number; validationAccuracy?: number }) => void;
}

export interface EncoderPretrainResult {
  /** Every hypernetwork parameter, with the encoder's replaced by the pretrained values. */
  readonly params: Map<string, Float32Array>;
  readonly losses: number[];
  readonly validation: { step: number; accuracy: number }[];
}

const LOG_PROBS_OUTPUT = 'attribute_log_probs';

export async function pretrainFaceEncoder(
  config: HypernetworkConfig,
  initial: ReadonlyMap<string, Float32Array>,
  faces: readonly LabelledFace[],
  options: EncoderPretrainOptions,
): Promise<EncoderPretrainResult> {
  if (faces.length === 0) throw new Error('encoder pretraining needs at least one labelled face');
  const classes = attributeClassCount(options.groups);
  const batch = options.batchSize;
  const size = config.encoder.imageSize;
  const pixelCount = 3 * size * size;
  for (const face of [...faces, ...(options.validation ?? [])]) {
    if (face.pixels.length !== pixelCount) throw new Error(`encoder pretraining: a face has ${face.pixels.length} values, the encoder takes ${pixelCount}`);
    if (face.labels.length !== classes) throw new Error(`encoder pretraining: a face has ${face.labels.length} labels, the groups have ${classes} classes`);
  }
  const g = new Graph('face-encoder-pretrain');
  const pixels = g.input(HYPERNETWORK_INPUT, 'float32', [batch, 3, size, size]);
  const encoded = buildVitEncoder(inputParams(g), config, pixels);
  const summary = classToken(encoded, config.encoder.width);
  const probe = buildAttributeProbe(g, summary, options.groups);
  const loss = g.output(probe.loss, 'loss');
  g.output(probe.logProbs, LOG_PROBS_OUTPUT);
  const params: ParamSet = initAttributeProbe(options.groups, config.encoder.width, options.seed ?? 0);
  for (const name of g.inputs) {
    if (name === HYPERNETWORK_INPUT || name === ATTRIBUTE_LABELS_INPUT || name in params) continue;
    const value = initial.get(name);
    if (!value) throw new Error(`encoder pretraining: no initial value for "${name}"`);
    params[name] = Float32Array.from(value);
  }
  const trainer = await createTrainer({
    graph: g,
    loss,
    params,
    optimizer: adam(),
    schedule: cosineSchedule({ lr: options.learningRate, totalSteps: options.steps, warmupSteps: Math.min(100, Math.floor(options.steps / 10)), minLr: options.learningRate / 20 }),
    extraOutputs: [LOG_PROBS_OUTPUT],
  });
  const feedsOf = (set: readonly LabelledFace[], picks: readonly number[]): RuntimeFeeds => {
    const x = new Float32Array(batch * pixelCount);
    const y = new Float32Array(batch * classes);
    picks.forEach((pick, j) => {
      x.set(set[pick]!.pixels, j * pixelCount);
      y.set(set[pick]!.labels, j * classes);
    });
    return { [HYPERNETWORK_INPUT]: float32Tensor(x, [batch, 3, size, size]), [ATTRIBUTE_LABELS_INPUT]: float32Tensor(y, [batch, classes]) };
  };
  const validate = async (set: readonly LabelledFace[]): Promise<number> => {
    let sum = 0;
    const batches = Math.ceil(set.length / batch);
    for (let b = 0; b < batches; b++) {
      // The last batch wraps around; only its first faces count.
      const picks = Array.from({ length: batch }, (_, j) => (b * batch + j) % set.length);
      const feeds = feedsOf(set, picks);
      const { outputs } = await trainer.loss(feeds);
      const used = Math.min(batch, set.length - b * batch);
      const logProbs = outputs[LOG_PROBS_OUTPUT]!.data as Float32Array;
      sum += attributeAccuracy(logProbs.subarray(0, used * classes), (feeds[ATTRIBUTE_LABELS_INPUT]!.data as Float32Array).subarray(0, used * classes), options.groups) * used;
    }
    return sum / set.length;
  };
  const losses: number[] = [];
  const validation: { step: number; accuracy: number }[] = [];
  try {
    for (let step = 0; step < options.steps; step++) {
      const rng = namedRng(options.seed ?? 0, `phase1/encoder/batch/${step}`);
      const result = await trainer.step(feedsOf(faces, Array.from({ length: batch }, () => rng.nextBelow(faces.length))));
      losses.push(result.loss);
      const done = step + 1;
      let validationAccuracy: number | undefined;
      if (options.validation?.length && options.validationEvery && (done % options.validationEvery === 0 || done === options.steps)) {
        validationAccuracy = await validate(options.validation);
        validation.push({ step: done, accuracy: validationAccuracy });
      }
      options.onProgress?.({ step: done, steps: options.steps, loss: result.loss, ...(validationAccuracy !== undefined ? { validationAccuracy } : {}) });
    }
    const { params: trained } = await trainer.read();
    const out = new Map(initial);
    for (const [name, value] of Object.entries(trained)) if (name !== ATTRIBUTE_PROBE.weight && name !== ATTRIBUTE_PROBE.bias) out.set(name, value);
    return { params: out, losses, validation };
  } finally {
    await trainer.close();
  }
}
