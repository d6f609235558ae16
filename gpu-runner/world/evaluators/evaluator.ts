// The trained evaluator at inference: embeddings and per-head probabilities for images, and the paper's metrics in
// this world (docs/world.md): identity similarity (face-recognition-like), prompt fidelity (CLIP-T-like) and reference
// similarity (DINO/CLIP-I-like).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSafetensors, toFloat32 } from '../../io/safetensors.ts';
import { serializeModel } from '../../onnx/index.ts';
import { createSessionRunner, float32Tensor, type SessionRunner } from '../../onnx/runtime/index.ts';
import type { Context } from '../attributes.ts';
import type { RgbImage } from '../render.ts';
import { toBatch } from './data.ts';
import { HEADS, HEAD_OFFSETS } from './heads.ts';
import { buildEvaluatorInferenceGraph, EMBEDDING_DIM, evaluatorShapes, type EvaluatorParams } from './network.ts';

export const EVALUATOR_WEIGHTS = join(dirname(fileURLToPath(import.meta.url)), 'weights', 'world-evaluator.safetensors');
const EVAL_BATCH = 16;

export interface ImageScores {
  readonly embedding: Float32Array;
  /** Per-head class probabilities, head order as in HEADS. */
  readonly probs: Float32Array[];
}

export function loadEvaluatorParams(path = EVALUATOR_WEIGHTS): EvaluatorParams {
  if (!existsSync(path)) throw new Error(`world evaluator weights not found at ${path}: run \`npm run world:train-evaluator\``);
  const { tensors } = loadSafetensors(path);
  const params: EvaluatorParams = {};
  for (const [name, shape] of Object.entries(evaluatorShapes())) {
    const tensor = tensors.get(name);
    if (!tensor) throw new Error(`${path}: missing tensor ${name}`);
    if (tensor.shape.join() !== shape.join()) throw new Error(`${path}: ${name} is [${tensor.shape}], expected [${shape}]`);
    params[name] = toFloat32(tensor);
  }
  return params;
}

export class WorldEvaluator {
  private constructor(
    private readonly runner: SessionRunner,
    private readonly params: EvaluatorParams,
  ) {}

  static async open(params: EvaluatorParams = loadEvaluatorParams()): Promise<WorldEvaluator> {
    const runner = await createSessionRunner(serializeModel(buildEvaluatorInferenceGraph(EVAL_BATCH)));
    return new WorldEvaluator(runner, params);
  }

  async score(images: readonly RgbImage[]): Promise<ImageScores[]> {
    const shapes = evaluatorShapes();
    const paramFeeds = Object.fromEntries(Object.entries(this.params).map(([n, d]) => [n, float32Tensor(d, shapes[n]!)]));
    const out: ImageScores[] = [];
    for (let start = 0; start < images.length; start += EVAL_BATCH) {
      const chunk = images.slice(start, start + EVAL_BATCH);
      // The session has a static batch: pad the last chunk by repeating its first image, then drop the padding.
      const padded = [...chunk, ...Array.from({ length: EVAL_BATCH - chunk.length }, () => chunk[0]!)];
      const result = await this.runner.run({ ...paramFeeds, images: float32Tensor(toBatch(padded), [EVAL_BATCH, 3, 32, 32]) });
      const embedding = result.embedding!.data as Float32Array;
      const probs = result.probs!.data as Float32Array;
      const width = probs.length / EVAL_BATCH;
      for (let i = 0; i < chunk.length; i++) {
        const row = probs.subarray(i * width, (i + 1) * width);
        out.push({
          embedding: embedding.slice(i * EMBEDDING_DIM, (i + 1) * EMBEDDING_DIM),
          probs: HEADS.map((head, k) => row.slice(HEAD_OFFSETS[k]!, HEAD_OFFSETS[k]! + head.classes)),
        });
      }
    }
    return out;
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb + 1e-12);
}

function concatHeads(scores: ImageScores, group: 'identity' | 'context'): Float32Array {
  const parts = HEADS.map((h, k) => (h.group === group ? scores.probs[k]! : new Float32Array(0)));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Identity similarity: cosine between the identity-attribute probability vectors (context heads ignored). */
export function identitySimilarity(generated: ImageScores, reference: ImageScores): number {
  return cosine(concatHeads(generated, 'identity'), concatHeads(reference, 'identity'));
}

/** Reference similarity: cosine between whole-image embeddings (identity and context alike, like DINO/CLIP-I). */
export function referenceSimilarity(generated: ImageScores, reference: ImageScores): number {
  return cosine(generated.embedding, reference.embedding);
}

/** Prompt fidelity: the mean probability the context heads give to what the prompt asked for. */
export function promptFidelity(generated: ImageScores, requested: Context): number {
  const contextHeads = HEADS.map((h, k) => [h, k] as const).filter(([h]) => h.group === 'context');
  const total = contextHeads.reduce((sum, [head, k]) => sum + generated.probs[k]![head.label(undefined as never, requested)]!, 0);
  return total / contextHeads.length;
}
