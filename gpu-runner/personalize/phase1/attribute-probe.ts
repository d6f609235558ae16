// A linear probe on the encoder's class token with a softmax cross-entropy per attribute group: the identity signal
// that teaches a from-scratch face encoder to read who is in a photo (the paper starts from a pretrained face ViT).
// Used by the encoder's pretraining and, optionally, beside the diffusion loss in phase 1.
import { concat, type Graph, linear, logSoftmax, mul, neg, reduceMean, reduceSum, slice, type Value } from '../../onnx/index.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';

/** The one-hot attribute labels of each face, every group's classes concatenated: [batch, Σ classes]. */
export const ATTRIBUTE_LABELS_INPUT = 'attribute_labels';
/** The probe's parameters: trained beside the hypernetwork, never part of its checkpoint. */
export const ATTRIBUTE_PROBE = { weight: 'attribute_probe.weight', bias: 'attribute_probe.bias' } as const;

export const attributeClassCount = (groups: readonly number[]) => groups.reduce((n, c) => n + c, 0);

export interface AttributeProbe {
  /** Mean over the batch of the groups' summed cross-entropies. */
  readonly loss: Value;
  /** Per-group log-probabilities, concatenated [batch, Σ classes]. */
  readonly logProbs: Value;
}

/** Adds the probe, its label input and its loss to `g`; the probe's parameters are graph inputs (trainable). */
export function buildAttributeProbe(g: Graph, summary: Value, groups: readonly number[]): AttributeProbe {
  if (groups.length === 0) throw new Error('the attribute probe needs at least one attribute group');
  const [batch, width] = summary.staticShape as [number, number];
  const classes = attributeClassCount(groups);
  const labels = g.input(ATTRIBUTE_LABELS_INPUT, 'float32', [batch, classes]);
  const logits = linear(summary, g.input(ATTRIBUTE_PROBE.weight, 'float32', [classes, width]), g.input(ATTRIBUTE_PROBE.bias, 'float32', [classes]));
  let offset = 0;
  const logProbs = concat(
    groups.map((count) => {
      const part = logSoftmax(slice(logits, [offset], [offset + count], [1]), 1);
      offset += count;
      return part;
    }),
    1,
  );
  return { loss: reduceMean(neg(reduceSum(mul(logProbs, labels), [1]))), logProbs };
}

/** The probe's starting values: a timm linear layer's (N(0, 0.02²), bias 0), seeded. */
export function initAttributeProbe(groups: readonly number[], width: number, seed: number): Record<string, Float32Array> {
  const classes = attributeClassCount(groups);
  return {
    [ATTRIBUTE_PROBE.weight]: fillGaussianFloat32(namedRng(seed, 'phase1/attribute-probe'), classes * width, 0.02),
    [ATTRIBUTE_PROBE.bias]: new Float32Array(classes),
  };
}

/** Share of (face, group) pairs whose most likely class is the labelled one. */
export function attributeAccuracy(logProbs: Float32Array, labels: Float32Array, groups: readonly number[]): number {
  const classes = attributeClassCount(groups);
  const faces = labels.length / classes;
  let right = 0;
  for (let f = 0; f < faces; f++) {
    let offset = f * classes;
    for (const count of groups) {
      let best = 0;
      for (let c = 1; c < count; c++) if (logProbs[offset + c]! > logProbs[offset + best]!) best = c;
      if (labels[offset + best] === 1) right++;
      offset += count;
    }
  }
  return right / (faces * groups.length);
}
