// Images from a method's weights: the sampler's networks with the weights applied, the way the runner generates
// (LiDB and relax factors as graph inputs of the adapted text encoder and UNet). Textual Inversion changes only the
// identifier's embedding rows, which the runner's sessions do not take, so its text encoder is built here with those
// rows as a graph input (the same substitution the TI finetune trained through).
import { generate, type DiffusionModels, type SchedulerChoice } from '../../diffusion/sampler.ts';
import { createDiffusionModels, type LoadedModels } from '../../diffusion/pipeline.ts';
import { CLIP_TEXT_INPUT, CLIP_TEXT_OUTPUTS, buildClipTextGraph } from '../../models/clip-text/build.ts';
import { type GraphSession, openGraphSession } from '../../models/session.ts';
import { BindingGraph } from '../../personalize/finetune/diffusion-loss-graph.ts';
import { TI_EMBEDDING_INPUT, TOKEN_EMBEDDING_PARAM, withTrainableRows } from '../../personalize/finetune/textual-inversion.ts';
import type { PersonalizationModel } from '../../personalize/model.ts';
import type { PersonalizedWeights } from '../../personalize/weights/personalized-weights.ts';
import { PersonalizedSessions } from '../../server/executors/personalized-diffusion.ts';
import type { ClipTokenizer } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import type { RgbImage } from '../render.ts';

/** CLIP's context length for SD 1.x. */
const TEXT_LENGTH = 77;

export interface SamplingOptions {
  readonly scheduler: SchedulerChoice;
  readonly steps: number;
  readonly guidanceScale: number;
}

/** Every network the benchmark samples from, opened once per pack and shared by all methods and identities. */
export class BenchmarkSamplers {
  private readonly adapted: PersonalizedSessions;
  private readonly base: LoadedModels;
  private readonly tiSessions = new Map<string, Promise<GraphSession>>();

  constructor(
    private readonly model: PersonalizationModel,
    private readonly tokenizer: ClipTokenizer,
    private readonly threads: number | undefined,
  ) {
    this.adapted = new PersonalizedSessions(model, threads);
    this.base = createDiffusionModels({ unet: model.unet, textEncoder: model.textEncoder, vae: model.vae }, threads ? { threads } : {});
  }

  /** The networks for one set of weights; the base model when `weights` is undefined. */
  modelsFor(weights: PersonalizedWeights | undefined): DiffusionModels {
    if (!weights) return this.base;
    const ti = weights.textualInversion;
    if (!ti) return this.adapted.modelsFor(weights);
    if (weights.lidb || weights.relax) throw new Error('weights with both textual inversion and LiDB/relax factors are not supported here');
    return { ...this.base, encodeText: (ids, batch) => this.encodeWithEmbedding(ids, batch, ti.tokenIds, ti.embedding) };
  }

  /** Images (HWC, [0, 1]) for one prompt: `count` images with seeds seed, seed + 1, … (the sampler's contract). */
  async sample(weights: PersonalizedWeights | undefined, prompt: string, seed: number, count: number, options: SamplingOptions): Promise<RgbImage[]> {
    const size = this.model.resolution;
    const result = await generate(this.modelsFor(weights), this.tokenizer, {
      prompt,
      seed,
      numInferenceSteps: options.steps,
      guidanceScale: options.guidanceScale,
      width: size,
      height: size,
      batchSize: count,
      scheduler: options.scheduler,
    });
    return Array.from({ length: count }, (_, b) => toHwcImage(result.images, b, size));
  }

  async release(): Promise<void> {
    const ti = await Promise.all(this.tiSessions.values());
    this.tiSessions.clear();
    await Promise.all([this.adapted.release(), this.base.release(), ...ti.map((s) => s.release())]);
  }

  private async encodeWithEmbedding(inputIds: BigInt64Array, batch: number, tokenIds: readonly number[], embedding: Float32Array): Promise<Float32Array> {
    const session = await this.tiSession(batch, tokenIds);
    const hidden = this.model.textEncoder.config.hiddenSize;
    const outputs = await session.run({
      [CLIP_TEXT_INPUT]: { dtype: 'int64', dims: [batch, TEXT_LENGTH], data: inputIds },
      [TI_EMBEDDING_INPUT]: { dtype: 'float32', dims: [tokenIds.length, hidden], data: embedding },
    });
    const out = outputs[CLIP_TEXT_OUTPUTS.lastHiddenState];
    if (!out) throw new Error('the textual inversion text encoder returned no last hidden state');
    return out;
  }

  private tiSession(batch: number, tokenIds: readonly number[]): Promise<GraphSession> {
    const key = `${batch}:${tokenIds.join(',')}`;
    let session = this.tiSessions.get(key);
    if (!session) {
      const { vocabSize, hiddenSize } = this.model.textEncoder.config;
      const g = new BindingGraph('text_encoder_textual_inversion');
      g.redirectParam(TOKEN_EMBEDDING_PARAM, (table) => withTrainableRows(g, table, tokenIds, vocabSize, hiddenSize));
      buildClipTextGraph(this.model.textEncoder.config, this.model.paramSources.textEncoder, { batch, length: TEXT_LENGTH, graph: g });
      session = openGraphSession(g, this.threads ? { threads: this.threads } : {});
      this.tiSessions.set(key, session);
    }
    return session;
  }
}

/** Image `index` of a decoded batch [batch, 3, H, W] in [−1, 1] → HWC in [0, 1] (diffusers' postprocess, unrounded). */
function toHwcImage(images: Float32Array, index: number, size: number): RgbImage {
  const plane = size * size;
  const data = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const offset = (index * 3 + c) * plane;
    for (let p = 0; p < plane; p++) data[p * 3 + c] = Math.min(1, Math.max(0, images[offset + p]! / 2 + 0.5));
  }
  return { width: size, height: size, data };
}
