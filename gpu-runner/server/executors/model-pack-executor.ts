// The real executor: personalization with the HyperDreamBooth library (gpu-runner/personalize) and generation with
// the SD 1.5 sampler (gpu-runner/diffusion) on one model pack. Every session it opens (hypernetwork, VAE encoder and
// decoder, text encoder, UNet, trainers, the prior's sampler) goes through the process's shared session host,
// configured once with the runner's provider and threads; the runs happen in the host's worker thread, so this
// executor runs on the service's thread without blocking it (only graph building and small per-step array work
// happen here).
import { generate } from '../../diffusion/sampler.ts';
import {
  configureSharedSessionHost,
  sharedSessionHost,
  shutdownSharedSessionHost,
  type ExecutionProvider,
  type SessionKindStatus,
} from '../../onnx/runtime/index.ts';
import { personalize } from '../../personalize/api.ts';
import { FaceImageError } from '../../personalize/face/preprocess.ts';
import { PersonalizationCanceled } from '../../personalize/finetune/fast-finetune.ts';
import { parsePriorPreservation, preparePriorPreservation, type PriorPreservation } from '../../personalize/finetune/prior.ts';
import {
  InvalidInputError,
  JobAbortedError,
  throwIfAborted,
  type ExecutionContext,
  type GenerateInput,
  type GenerateOutput,
  type JobExecutor,
  type PersonalizeInput,
  type PersonalizeOutput,
  type RgbImage,
} from '../jobs/executor.ts';
import { packLabel } from '../../pack/pack-index.ts';
import { loadModelPack, schedulerChoice, type LoadedPack, type WeightPlacement } from '../../pack/model-pack.ts';
import { PersonalizedSessions } from '../../personalize/personalized-diffusion.ts';
import { drawnSize, enlarge } from './native-resolution.ts';
import type { WeightsCheckResult } from '../../../contract/index.ts';
import type { PersonalizedWeights } from '../../personalize/weights/personalized-weights.ts';
import { checkWeightsFile, type BaseModel } from './weight-check.ts';
import { checkOutputs, resultFigures, weightFiles } from './weight-files.ts';
import type { SamplingPrecisionSetting } from '../../models/precision.ts';

/** The sampler that draws prior-preservation class images (DDIM, as in the model card's gates). */
const CLASS_SAMPLE_SCHEDULER = 'ddim';

export type ModelPackExecutorOptions = {
  /** A diffusers SD 1.5 folder with `hypernetwork/model.safetensors`; the default pack when absent (pack/default-pack.ts). */
  modelDir?: string;
  /** The diffusers weight variant to load (`fp16` → `*.fp16.safetensors`); detected when a folder holds only one. */
  modelVariant?: string;
  /** onnxruntime intra-op threads per session; its default (all cores) when absent. */
  threads?: number;
  /** How graphs get their weights: copied in, or referenced in the checkpoint (default: by size, above 1 GiB). */
  weights?: WeightPlacement;
  /** What the operator asked for (RUNNER_EXECUTION_PROVIDER); logged against what the sessions use. */
  executionProvider?: 'auto' | 'cpu' | 'cuda';
  /** RUNNER_SAMPLING_PRECISION for the text encoder, UNet and VAE decoder of generations (default auto). */
  samplingPrecision?: SamplingPrecisionSetting;
};

export class ModelPackExecutor implements JobExecutor {
  private pack: LoadedPack | undefined;
  private sessions: PersonalizedSessions | undefined;
  private loadWarnings: string[] = [];
  private provider: ExecutionProvider | undefined;

  constructor(private readonly options: ModelPackExecutorOptions) {}

  get description(): string {
    if (!this.pack) return `model pack ${this.options.modelDir ? packLabel(this.options.modelDir) : '(default: the world pack when complete, else the tiny pack)'}`;
    return `model pack ${this.pack.id} (sha256 ${this.pack.sha256.slice(0, 12)}…, hypernetwork ${this.pack.hypernetwork}), execution provider ${this.provider ?? 'not chosen yet'}`;
  }

  get warnings(): readonly string[] {
    return this.loadWarnings;
  }

  async warmup(): Promise<void> {
    this.pack = await loadModelPack(
      this.options.modelDir,
      (message) => this.loadWarnings.push(message),
      this.options.weights,
      this.options.modelVariant ? { variant: this.options.modelVariant } : {},
    );
    const requested = this.options.executionProvider ?? 'auto';
    configureSharedSessionHost({ executionProvider: requested, ...(this.options.threads ? { intraOpNumThreads: this.options.threads } : {}) });
    this.sessions = new PersonalizedSessions(this.pack.model, this.options.threads, this.pack.externalWeights, requested, this.options.samplingPrecision);
    this.provider = await this.sessions.warm();
    if (requested === 'auto' && this.provider === 'cpu') {
      const reason = Object.values(this.sessionKinds()).find((status) => status.cudaUnavailable)?.cudaUnavailable;
      this.loadWarnings.push(`running on CPU: auto chose it because CUDA is not available${reason ? ` (${reason})` : ''}`);
    }
  }

  sessionKinds(): Record<string, SessionKindStatus> {
    return sharedSessionHost().sessionKinds();
  }

  async personalize(input: PersonalizeInput, context: ExecutionContext): Promise<PersonalizeOutput> {
    const pack = this.loaded();
    if (input.images.length === 0) throw new InvalidInputError('a personalization needs at least one image');
    const photos = input.images.map(({ faceBox, ...image }) => ({ image, ...(faceBox ? { box: faceBox } : {}) }));
    checkOutputs(input.method, input.outputs);
    const { finetune } = input;
    let weights: PersonalizedWeights;
    try {
      // Every photo is used: the prediction combines them, the finetune takes them in turn (docs/api.md).
      ({ weights } = await personalize(pack.model, photos, {
        method: input.method,
        steps: finetune.steps,
        rank: finetune.rank,
        relax: finetune.relax,
        seed: finetune.seed,
        identifier: finetune.identifier_token,
        ...(finetune.learning_rate === undefined ? {} : { learningRate: finetune.learning_rate }),
        ...(finetune.prior_preservation_weight ? { prior: await this.prior(pack, finetune.prior_preservation_weight) } : {}),
        signal: context.signal,
        onProgress: (progress) => context.reportProgress(progress.step, progress.steps),
      }));
    } catch (error) {
      if (error instanceof PersonalizationCanceled || context.signal.aborted) throw abortedBy(context.signal);
      if (error instanceof FaceImageError) throw new InvalidInputError(error.message);
      throw error;
    }
    return { baseModelId: pack.id, ...resultFigures(weights), files: weightFiles(weights, pack.model.bases, input.outputs) };
  }

  /** λ and the pack's class samples (drawn by the base model once per runner, with the library's default prompts). */
  private prior(pack: LoadedPack, weight: number): Promise<PriorPreservation> {
    return preparePriorPreservation(pack.model, schedulerChoice(pack, CLASS_SAMPLE_SCHEDULER), parsePriorPreservation({ weight }));
  }

  async generate(input: GenerateInput, context: ExecutionContext): Promise<GenerateOutput> {
    const pack = this.loaded();
    if (input.weights.format !== 'lidb') throw new InvalidInputError(`generation takes the native lidb weight file, not ${input.weights.format}`);
    const { weights } = checkWeightsFile(input.weights.bytes, baseModelOf(pack));
    const { params } = input;
    const drawn = drawnSize(pack, params.width, params.height);
    const result = await generate(this.sessionsOrThrow().modelsFor(weights), pack.tokenizer, {
      prompt: params.prompt,
      negativePrompt: params.negative_prompt,
      seed: params.seed,
      numInferenceSteps: params.steps,
      guidanceScale: params.guidance_scale,
      width: drawn.width,
      height: drawn.height,
      batchSize: params.num_images,
      scheduler: schedulerChoice(pack, params.scheduler),
      onStep: (step, total) => {
        context.reportProgress(step, total);
        // Throwing here leaves the sampler between two steps: that is where cancellation takes effect.
        throwIfAborted(context.signal);
      },
    });
    return {
      images: result.seeds.map((seed, index) => ({ index, seed, image: enlarge(toRgb(result.images, index, drawn.width, drawn.height), drawn.factor) })),
    };
  }

  checkWeights(bytes: Uint8Array): WeightsCheckResult {
    return checkWeightsFile(bytes, baseModelOf(this.loaded())).figures;
  }

  async close(): Promise<void> {
    await this.sessions?.release();
    // The process's session host (every session of the jobs and the personalization library's trainers).
    await shutdownSharedSessionHost();
  }

  private loaded(): LoadedPack {
    if (!this.pack) throw new Error('the model pack is not loaded (warmup has not finished)');
    return this.pack;
  }

  private sessionsOrThrow(): PersonalizedSessions {
    if (!this.sessions) throw new Error('the model pack is not loaded (warmup has not finished)');
    return this.sessions;
  }
}

function abortedBy(signal: AbortSignal): JobAbortedError {
  return new JobAbortedError(signal.reason === 'shutdown' ? 'shutdown' : 'canceled');
}

/** One image of a decoded batch [batch, 3, H, W] in [−1, 1] → 8-bit RGB (diffusers' postprocess, numpy rounding). */
function toRgb(images: Float32Array, index: number, width: number, height: number): RgbImage {
  const plane = width * height;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const offset = (index * 3 + c) * plane;
    for (let p = 0; p < plane; p++) {
      const value = Math.min(1, Math.max(0, (images[offset + p] ?? 0) / 2 + 0.5));
      data[p * 3 + c] = roundHalfEven(value * 255);
    }
  }
  return { width, height, channels: 3, data };
}

function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

function baseModelOf(pack: LoadedPack): BaseModel {
  return { id: pack.id, sha256: pack.sha256, unet: pack.model.unet.plan, textEncoder: pack.model.textEncoder.config };
}
