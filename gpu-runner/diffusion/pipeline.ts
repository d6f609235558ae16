// The sampler's networks from loaded model components (gpu-runner/models): one onnxruntime session per model and
// input shape (graphs have static shapes), built on first use and kept for later calls. Sessions come from the
// engine's session host, with the process's provider and threads (`configureSharedSessionHost`).
import { type Graph, saveModel, serializeModel } from '../onnx/index.ts';
import { createSessionRunner, float32Data, float32Tensor, int64Tensor, type SessionRunner } from '../onnx/runtime/index.ts';
import type { ModelWeights } from '../models/checkpoint/weights.ts';
import { CLIP_TEXT_INPUT, CLIP_TEXT_OUTPUTS, buildClipTextGraph } from '../models/clip-text/build.ts';
import {
  type TextEncoderComponent,
  type UnetComponent,
  type VaeComponent,
} from '../models/checkpoint/diffusers-folder.ts';
import { type ParamSource, externalParams, inlineParams } from '../models/params.ts';
import { SESSION_KINDS, type JobSessionKind } from '../models/session-kinds.ts';
import { UNET_INPUTS, UNET_OUTPUT, buildUnetGraph } from '../models/unet/build.ts';
import { VAE_DECODE, buildVaeDecoderGraph } from '../models/vae/build.ts';
import { type OpenOptions, openStableDiffusion } from './checkpoint.ts';
import type { DiffusionModels, SchedulerChoice } from './sampler.ts';
import { ClipTokenizer } from './tokenizer/clip-tokenizer.ts';

export interface ModelComponents {
  unet: UnetComponent;
  textEncoder: TextEncoderComponent;
  vae: VaeComponent;
}

export interface PipelineOptions {
  /** onnxruntime intra-op threads per session (the session host's setting when absent). */
  threads?: number;
  /**
   * How graphs get their weights: copied into the model ('inline', small models), or referenced inside the
   * checkpoint's safetensors file ('external', docs/engine.md: zero-copy; the .onnx is written beside the weights).
   * Default: external above INLINE_WEIGHT_LIMIT bytes per model.
   */
  weights?: 'inline' | 'external';
}

/** ONNX protobufs cannot exceed 2 GiB; stay well below with inline weights (SD 1.5's UNet is 3.4 GB in fp32). */
export const INLINE_WEIGHT_LIMIT = 1024 ** 3;

interface WeightedComponent {
  dir: string;
  weights: ModelWeights;
}

function weightBytes(weights: ModelWeights): number {
  return weights.names.reduce((sum, name) => sum + weights.tensor(name).byteLength, 0);
}

/** The parameter source and session opener for one model, inline or external as chosen. */
function sessionFactory(component: WeightedComponent, kind: JobSessionKind, options: PipelineOptions) {
  const external = options.weights ? options.weights === 'external' : weightBytes(component.weights) > INLINE_WEIGHT_LIMIT;
  const params: ParamSource = external ? externalParams(component.weights, component.dir) : inlineParams(component.weights);
  const sessionOptions = { kind, ...(options.threads ? { intraOpNumThreads: options.threads } : {}) };
  return {
    params,
    open(graph: Graph, shape: readonly number[]): Promise<SessionRunner> {
      if (!external) return createSessionRunner(serializeModel(graph), sessionOptions);
      // onnxruntime resolves external data relative to the model file, so the file sits beside the weights.
      const path = saveModel(graph, component.dir, `.${kind.replaceAll('-', '_')}-${shape.join('x')}.onnx`);
      return createSessionRunner(path, sessionOptions);
    },
  };
}

/** CLIP's context length for SD 1.x. */
const TEXT_LENGTH = 77;

/** Sessions keyed by input shape, opened once. */
class SessionsByShape {
  private readonly sessions = new Map<string, Promise<SessionRunner>>();

  constructor(private readonly open: (shape: readonly number[]) => Promise<SessionRunner>) {}

  get(shape: readonly number[]): Promise<SessionRunner> {
    const key = shape.join('x');
    let session = this.sessions.get(key);
    if (!session) {
      session = this.open(shape);
      this.sessions.set(key, session);
    }
    return session;
  }

  async release(): Promise<void> {
    const sessions = await Promise.all(this.sessions.values());
    this.sessions.clear();
    await Promise.all(sessions.map((session) => session.close()));
  }
}

export interface LoadedModels extends DiffusionModels {
  release(): Promise<void>;
}

/** DiffusionModels over onnxruntime sessions of the three networks. */
export function createDiffusionModels(components: ModelComponents, options: PipelineOptions = {}): LoadedModels {
  const unet = sessionFactory(components.unet, SESSION_KINDS.unet, options);
  const text = sessionFactory(components.textEncoder, SESSION_KINDS.textEncoder, options);
  const vae = sessionFactory(components.vae, SESSION_KINDS.vaeDecoder, options);
  const vaePlan = components.vae.plan;
  const latentChannels = vaePlan.config.latentChannels;
  const vaeScaleFactor = 2 ** (vaePlan.config.blockOutChannels.length - 1);

  const unetSessions = new SessionsByShape((shape) => {
    const [batch, height, width] = shape as [number, number, number];
    const { graph } = buildUnetGraph(components.unet.plan, unet.params, { batch, height, width, textLength: TEXT_LENGTH });
    return unet.open(graph, shape);
  });
  const textSessions = new SessionsByShape((shape) => {
    const { graph } = buildClipTextGraph(components.textEncoder.config, text.params, { batch: shape[0]!, length: TEXT_LENGTH });
    return text.open(graph, shape);
  });
  const vaeSessions = new SessionsByShape((shape) => {
    const [batch, height, width] = shape as [number, number, number];
    return vae.open(buildVaeDecoderGraph(vaePlan, vae.params, { batch, height, width }).graph, shape);
  });

  return {
    latentChannels,
    vaeScaleFactor,
    scalingFactor: vaePlan.config.scalingFactor,
    async encodeText(inputIds, batch) {
      const session = await textSessions.get([batch]);
      const outputs = await session.run({ [CLIP_TEXT_INPUT]: int64Tensor(inputIds, [batch, TEXT_LENGTH]) });
      return float32Data(outputs, CLIP_TEXT_OUTPUTS.lastHiddenState);
    },
    async predictNoise(latents, { batch, height, width }, timestep, context) {
      const session = await unetSessions.get([batch, height, width]);
      const hidden = context.length / (batch * TEXT_LENGTH);
      const outputs = await session.run({
        [UNET_INPUTS.sample]: float32Tensor(latents, [batch, latentChannels, height, width]),
        // One timestep per row, as float32: Euler's fractional timesteps reach the embedding unrounded.
        [UNET_INPUTS.timestep]: float32Tensor(new Float32Array(batch).fill(timestep), [batch]),
        [UNET_INPUTS.encoderHiddenStates]: float32Tensor(context, [batch, TEXT_LENGTH, hidden]),
      });
      return float32Data(outputs, UNET_OUTPUT);
    },
    async decodeLatents(latents, { batch, height, width }) {
      const session = await vaeSessions.get([batch, height, width]);
      const outputs = await session.run({ [VAE_DECODE.input]: float32Tensor(latents, [batch, latentChannels, height, width]) });
      return float32Data(outputs, VAE_DECODE.output);
    },
    async release() {
      await Promise.all([unetSessions.release(), textSessions.release(), vaeSessions.release()]);
    },
  };
}

export interface StableDiffusion {
  models: LoadedModels;
  tokenizer: ClipTokenizer;
  /** The folder's scheduler (scheduler/scheduler_config.json), to pass to the sampler or swap for another class. */
  scheduler: SchedulerChoice;
}

/**
 * Loads SD 1.5 from a diffusers folder (model_index.json, unet/, text_encoder/, vae/, tokenizer/, scheduler/) or a
 * single-file checkpoint with the original key names (checkpoint.ts).
 */
export function loadStableDiffusion(path: string, options: PipelineOptions & OpenOptions = {}): StableDiffusion {
  const { variant, singleFileConfigs } = options;
  const checkpoint = openStableDiffusion(path, { ...(variant ? { variant } : {}), ...(singleFileConfigs ? { singleFileConfigs } : {}) });
  const className = checkpoint.schedulerConfig._class_name;
  if (typeof className !== 'string') throw new Error(`${path}: the scheduler config has no "_class_name"`);
  return {
    models: createDiffusionModels(checkpoint, options),
    tokenizer: ClipTokenizer.load(checkpoint.tokenizer),
    scheduler: { className, config: checkpoint.schedulerConfig },
  };
}
