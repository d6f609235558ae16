// The evaluator: a small CNN on 32 × 32 RGB images → a 128-d embedding → one softmax head per attribute.
// Built with our ONNX engine, trained by it on renders only (never on generated images).
import {
  Graph,
  concat,
  conv2d,
  linear,
  logSoftmax,
  mul,
  neg,
  reduceMean,
  reduceSum,
  reshape,
  silu,
  slice,
  softmax,
  type Value,
} from '../../onnx/index.ts';
import { namedRng, fillGaussianFloat32 } from '../../random/index.ts';
import { HEADS, HEAD_OFFSETS, TOTAL_CLASSES } from './heads.ts';

export const EVAL_IMAGE_SIZE = 32;
export const EMBEDDING_DIM = 128;
const CHANNELS: readonly number[] = [3, 24, 48, 64];
const FEATURES = CHANNELS[3]! * (EVAL_IMAGE_SIZE / 8) ** 2;

export type EvaluatorParams = Record<string, Float32Array>;

/** Parameter names and shapes, in a stable order (the checkpoint's order). */
export function evaluatorShapes(): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (let i = 0; i < 3; i++) {
    shapes[`conv${i}.weight`] = [CHANNELS[i + 1]!, CHANNELS[i]!, 3, 3];
    shapes[`conv${i}.bias`] = [CHANNELS[i + 1]!];
  }
  shapes['embed.weight'] = [EMBEDDING_DIM, FEATURES];
  shapes['embed.bias'] = [EMBEDDING_DIM];
  shapes['heads.weight'] = [TOTAL_CLASSES, EMBEDDING_DIM];
  shapes['heads.bias'] = [TOTAL_CLASSES];
  return shapes;
}

/** He-style initialization from a seed (std √(2 / fan_in)), biases zero. */
export function initEvaluatorParams(seed: number): EvaluatorParams {
  const params: EvaluatorParams = {};
  for (const [name, shape] of Object.entries(evaluatorShapes())) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith('.bias')) {
      params[name] = new Float32Array(count);
      continue;
    }
    const fanIn = count / shape[0]!;
    params[name] = fillGaussianFloat32(namedRng(seed, `evaluator/${name}`), count, Math.sqrt(2 / fanIn));
  }
  return params;
}

interface Trunk {
  readonly graph: Graph;
  readonly images: Value;
  readonly embedding: Value;
  readonly logits: Value;
}

/** images [batch, 3, 32, 32] in [-1, 1] → embedding [batch, 128] and concatenated head logits [batch, TOTAL_CLASSES]. */
function buildTrunk(name: string, batch: number): Trunk {
  const g = new Graph(name);
  const images = g.input('images', 'float32', [batch, 3, EVAL_IMAGE_SIZE, EVAL_IMAGE_SIZE]);
  const p = Object.fromEntries(Object.entries(evaluatorShapes()).map(([n, s]) => [n, g.input(n, 'float32', s)]));
  let h: Value = images;
  for (let i = 0; i < 3; i++) h = silu(conv2d(h, p[`conv${i}.weight`]!, p[`conv${i}.bias`]!, { stride: 2, padding: 1 }));
  const embedding = silu(linear(reshape(h, [batch, FEATURES]), p['embed.weight']!, p['embed.bias']!));
  const logits = linear(embedding, p['heads.weight']!, p['heads.bias']!);
  return { graph: g, images, embedding, logits };
}

/** Per-head log-probabilities, concatenated in head order. */
function perHead(logits: Value, normalize: (x: Value, axis: number) => Value): Value {
  return concat(
    HEADS.map((head, k) => normalize(slice(logits, [HEAD_OFFSETS[k]!], [HEAD_OFFSETS[k]! + head.classes], [1]), 1)),
    1,
  );
}

/** Training graph: loss = mean over the batch of the summed per-head cross-entropies (one-hot `targets`). */
export function buildEvaluatorTrainingGraph(batch: number): { graph: Graph; loss: Value; logits: Value } {
  const { graph, logits } = buildTrunk('world-evaluator-train', batch);
  const targets = graph.input('targets', 'float32', [batch, TOTAL_CLASSES]);
  const nll = neg(reduceSum(mul(perHead(logits, logSoftmax), targets), [1]));
  const loss = reduceMean(nll);
  graph.output(loss, 'loss');
  return { graph, loss, logits };
}

/** Inference graph: embedding and per-head probabilities (softmax within each head, concatenated). */
export function buildEvaluatorInferenceGraph(batch: number): Graph {
  const { graph, embedding, logits } = buildTrunk('world-evaluator', batch);
  graph.output(embedding, 'embedding');
  graph.output(perHead(logits, softmax), 'probs');
  return graph;
}
