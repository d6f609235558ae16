// The sampler's networks with personalized weights applied: the text encoder and the UNet are built with the LiDB
// adapter (the same graph injection the finetune trained through, gpu-runner/personalize/lidb/graph-adapter.ts), and
// the weights are fed as graph inputs, so one session per (shape, adapter layout) serves every subject (docs/engine.md:
// "personalized weights are graph inputs, never baked into a new session"). Sessions come from the engine's session
// host: CUDA when present (else CPU), built once and cached on disk (gpu-runner/onnx/runtime). Textual-inversion
// weights enter the same way: the text encoder's token table takes the learned rows and their token ids as inputs
// (the substitution the TI finetune trained through, personalize/finetune/textual-inversion.ts).
import { CLIP_TEXT_INPUT, CLIP_TEXT_OUTPUTS, buildClipTextGraph } from '../models/clip-text/build.ts';
import { UNET_INPUTS, UNET_OUTPUT, buildUnetGraph } from '../models/unet/build.ts';
import { VAE_DECODE, buildVaeDecoderGraph } from '../models/vae/build.ts';
import { SESSION_KINDS, type JobSessionKind } from '../models/session-kinds.ts';
import { samplingPrecisionFor, type InferencePrecision, type SamplingPrecisionSetting } from '../models/precision.ts';
import type { DiffusionModels } from '../diffusion/sampler.ts';
import { saveModel, serializeModel, type Graph, type HostTensor } from '../onnx/index.ts';
import {
  createSessionRunner,
  float32Data,
  providerCandidates,
  type ExecutionProvider,
  type ExecutionProviderPreference,
  type RuntimeFeeds,
  type SessionRunner,
} from '../onnx/runtime/index.ts';
import { BindingGraph } from './finetune/diffusion-loss-graph.ts';
import { TI_EMBEDDING_INPUT, TI_TOKEN_IDS_INPUT, TOKEN_EMBEDDING_PARAM, withFedRows } from './finetune/textual-inversion.ts';
import { TEXT_ENCODER_COMPONENT, UNET_COMPONENT } from './lidb/adapted-layers.ts';
import { createLidbAdapter, lidbAdapterFeeds, type AdapterFeedValues, type LidbAdapterValues } from './lidb/graph-adapter.ts';
import type { PersonalizationModel } from './model.ts';
import type { PersonalizedWeights } from './weights/personalized-weights.ts';

/** Where each network's weights live when graphs reference them in place (external data) instead of copying them. */
export type ExternalWeightDirs = { unet?: string; textEncoder?: string; vae?: string };

const SD15_LATENT_SIDE = 64;
/** CLIP's context length for SD 1.x. */
const TEXT_LENGTH = 77;

type AdaptedSession = { session: SessionRunner; adapter: LidbAdapterValues | undefined };

/** Engine graph feeds (`dtype`) as runtime feeds (`type`). */
function runtimeFeeds(feeds: Record<string, HostTensor>): RuntimeFeeds {
  const out: RuntimeFeeds = {};
  for (const [name, tensor] of Object.entries(feeds)) out[name] = { type: tensor.dtype, dims: tensor.dims, data: tensor.data } as RuntimeFeeds[string];
  return out;
}

/**
 * What decides a graph's personalization inputs: LiDB rank, the relax term's mode and rank, and the number of
 * textual-inversion vectors (text encoder only; 0 without).
 */
type AdapterLayout = { lidbRank: number; relax: { mode: 'lora' | 'lidb'; rank: number } | undefined; tiVectors: number };

function layoutOf(weights: PersonalizedWeights): AdapterLayout {
  return {
    lidbRank: weights.lidb ? weights.settings.r : 0,
    relax: weights.relax ? { mode: weights.relax.mode, rank: weights.relax.rank } : undefined,
    tiVectors: weights.textualInversion?.tokenIds.length ?? 0,
  };
}

const adapterKey = (layout: AdapterLayout) => `r${layout.lidbRank}-${layout.relax ? `${layout.relax.mode}${layout.relax.rank}` : 'none'}`;
const textKey = (layout: AdapterLayout) => `${adapterKey(layout)}${layout.tiVectors ? `-ti${layout.tiVectors}` : ''}`;

/** The textual-inversion feeds of the text encoder: the token ids and their learned rows. */
function textualInversionFeeds(weights: PersonalizedWeights, hidden: number): Record<string, HostTensor> {
  const ti = weights.textualInversion;
  if (!ti) return {};
  const vectors = ti.tokenIds.length;
  return {
    [TI_TOKEN_IDS_INPUT]: { dtype: 'int64', dims: [vectors], data: BigInt64Array.from(ti.tokenIds, (id) => BigInt(id)) },
    [TI_EMBEDDING_INPUT]: { dtype: 'float32', dims: [vectors, hidden], data: ti.embedding },
  };
}

/** Per-layer factors of a weight file, by layer name, as the adapter feeds them. */
function feedValues(weights: PersonalizedWeights): AdapterFeedValues {
  const byName = <T>(factors: readonly T[] | undefined) =>
    factors ? new Map(weights.layers.map((layer, i) => [layer.name, factors[i]!] as const)) : undefined;
  const lidb = byName(weights.lidb);
  const relaxLidb = weights.relax?.mode === 'lidb' ? byName(weights.relax.factors) : undefined;
  const relaxLora = weights.relax?.mode === 'lora' ? byName(weights.relax.factors) : undefined;
  return { ...(lidb ? { lidb } : {}), ...(relaxLidb ? { relaxLidb } : {}), ...(relaxLora ? { relaxLora } : {}) };
}

/** Sessions of one model pack, opened on first use and kept: by component, input shape and adapter layout. */
export class PersonalizedSessions {
  private readonly sessions = new Map<string, Promise<AdaptedSession>>();

  constructor(
    private readonly model: PersonalizationModel,
    private readonly threads: number | undefined,
    /** Components whose weights stay in their checkpoint: graphs are saved there and opened from the file. */
    private readonly externalWeights: ExternalWeightDirs = {},
    private readonly executionProvider: ExecutionProviderPreference = 'auto',
    /** RUNNER_SAMPLING_PRECISION: the text encoder, UNet and VAE decoder graphs' precision (`../models/precision.ts`). */
    private readonly samplingPrecision: SamplingPrecisionSetting = 'auto',
  ) {}

  /** The provider of the sessions opened so far (undefined before the first). */
  provider: ExecutionProvider | undefined;

  /** The three networks for one set of weights (the sampler's interface). */
  modelsFor(weights: PersonalizedWeights): DiffusionModels {
    const { model } = this;
    const layout = layoutOf(weights);
    const factors = feedValues(weights);
    const tiFeeds = textualInversionFeeds(weights, model.textEncoder.config.hiddenSize);
    const vaePlan = model.vae.plan;
    const latentChannels = vaePlan.config.latentChannels;
    const adapterFeeds = (adapter: LidbAdapterValues | undefined): Record<string, HostTensor> =>
      adapter ? (lidbAdapterFeeds(adapter, factors) as Record<string, HostTensor>) : {};

    return {
      latentChannels,
      vaeScaleFactor: 2 ** (vaePlan.config.blockOutChannels.length - 1),
      scalingFactor: vaePlan.config.scalingFactor,
      encodeText: async (inputIds, batch) => {
        const { session, adapter } = await this.text(batch, layout);
        const outputs = await session.run(
          runtimeFeeds({ [CLIP_TEXT_INPUT]: { dtype: 'int64', dims: [batch, TEXT_LENGTH], data: inputIds }, ...adapterFeeds(adapter), ...tiFeeds }),
        );
        return float32Data(outputs, CLIP_TEXT_OUTPUTS.lastHiddenState);
      },
      predictNoise: async (latents, shape, timestep, context) => {
        const { session, adapter } = await this.unet(shape.batch, shape.height, shape.width, layout);
        const hidden = context.length / (shape.batch * TEXT_LENGTH);
        const outputs = await session.run(
          runtimeFeeds({
            [UNET_INPUTS.sample]: { dtype: 'float32', dims: [shape.batch, latentChannels, shape.height, shape.width], data: latents },
            [UNET_INPUTS.timestep]: { dtype: 'float32', dims: [shape.batch], data: new Float32Array(shape.batch).fill(timestep) },
            [UNET_INPUTS.encoderHiddenStates]: { dtype: 'float32', dims: [shape.batch, TEXT_LENGTH, hidden], data: context },
            ...adapterFeeds(adapter),
          }),
        );
        return float32Data(outputs, UNET_OUTPUT);
      },
      decodeLatents: async (latents, shape) => {
        const { session } = await this.vae(shape.batch, shape.height, shape.width);
        const outputs = await session.run(
          runtimeFeeds({ [VAE_DECODE.input]: { dtype: 'float32', dims: [shape.batch, latentChannels, shape.height, shape.width], data: latents } }),
        );
        return float32Data(outputs, VAE_DECODE.output);
      },
    };
  }

  /**
   * Opens the VAE decoder for the model's native size, so the first job does not pay for it and the provider the
   * sessions run on is known (and logged) at start.
   */
  async warm(): Promise<ExecutionProvider> {
    // SD 1.5's UNet config says 64 latents (512 px); a config without it gets SD 1.5's.
    const side = this.model.unet.plan.config.sampleSize ?? SD15_LATENT_SIDE;
    const { session } = await this.vae(1, side, side);
    return session.executionProvider;
  }

  async release(): Promise<void> {
    const sessions = await Promise.all(this.sessions.values());
    this.sessions.clear();
    await Promise.all(sessions.map(({ session }) => session.close()));
  }

  /** The session for `key`, opened on first use and again if its host went away (shut down, or its worker died). */
  private async cached(key: string, open: () => Promise<AdaptedSession>): Promise<AdaptedSession> {
    const existing = this.sessions.get(key);
    const live = existing ? await existing.then((entry) => (entry.session.alive ? entry : undefined), () => undefined) : undefined;
    if (live) return live;
    const opened = open();
    this.sessions.set(key, opened);
    opened.catch(() => {
      if (this.sessions.get(key) === opened) this.sessions.delete(key);
    });
    return opened;
  }

  private adapterFor(component: typeof UNET_COMPONENT | typeof TEXT_ENCODER_COMPONENT, layout: AdapterLayout) {
    if (layout.lidbRank === 0 && !layout.relax) return undefined;
    return createLidbAdapter({
      component,
      layers: this.model.layers,
      bases: this.model.bases,
      rank: layout.lidbRank,
      ...(layout.relax ? { relax: layout.relax } : {}),
    });
  }

  /**
   * The precision of the next sampling graph: for the provider the sessions got so far, or, before the first, the
   * provider they will try first.
   */
  private precision(): InferencePrecision {
    // An explicit setting needs no provider: the browser's host (no CUDA, no Node module lookup) always passes one.
    if (this.samplingPrecision !== 'auto') return this.samplingPrecision;
    return samplingPrecisionFor(this.samplingPrecision, this.provider ?? providerCandidates(this.executionProvider)[0]!);
  }

  /**
   * Builds the graph at `precision` and opens it. Should `auto` have built fp16 for CUDA and the session still landed
   * on the CPU (CUDA failed to start), the graph is rebuilt in fp32, which the CPU provider runs without the Casts.
   */
  private async open(
    build: (precision: InferencePrecision) => Graph,
    precision: InferencePrecision,
    component: keyof ExternalWeightDirs,
    key: string,
    kind: JobSessionKind,
  ): Promise<SessionRunner> {
    const runner = await this.openGraph(build(precision), precision, component, key, kind);
    if (precision === 'fp32' || this.samplingPrecision !== 'auto' || runner.executionProvider === 'cuda') return runner;
    await runner.close();
    return this.openGraph(build('fp32'), 'fp32', component, key, kind);
  }

  private async openGraph(graph: Graph, precision: InferencePrecision, component: keyof ExternalWeightDirs, key: string, kind: JobSessionKind): Promise<SessionRunner> {
    const dir = this.externalWeights[component];
    // onnxruntime resolves external data relative to the model file, so such a graph is saved beside its weights
    // (one file per precision: an fp16 and an fp32 graph of the same shape are different models).
    const fileKey = `${key}-${precision}`.replaceAll(/[^A-Za-z0-9_-]/g, '_');
    const model = dir ? saveModel(graph, dir, `.hdb-runner-${fileKey}.onnx`) : serializeModel(graph);
    const runner = await createSessionRunner(model, {
      kind,
      precision,
      executionProvider: this.executionProvider,
      ...(this.threads ? { intraOpNumThreads: this.threads } : {}),
    });
    this.provider = runner.executionProvider;
    return runner;
  }

  // Each build makes its adapter afresh: an adapter records the inputs of the one graph it was built into.

  private text(batch: number, layout: AdapterLayout): Promise<AdaptedSession> {
    const precision = this.precision();
    return this.cached(`text:${batch}:${textKey(layout)}:${precision}`, async () => {
      const config = this.model.textEncoder.config;
      let adapter: ReturnType<PersonalizedSessions['adapterFor']>;
      const build = (at: InferencePrecision) => {
        adapter = this.adapterFor(TEXT_ENCODER_COMPONENT, layout);
        let tiGraph: BindingGraph | undefined;
        if (layout.tiVectors > 0) {
          const g = (tiGraph = new BindingGraph('text_encoder'));
          g.redirectParam(TOKEN_EMBEDDING_PARAM, (table) => withFedRows(g, table, layout.tiVectors, config.vocabSize, config.hiddenSize));
        }
        return buildClipTextGraph(config, this.model.paramSources.textEncoder, {
          batch,
          length: TEXT_LENGTH,
          precision: at,
          ...(adapter ? { adapters: [adapter] } : {}),
          ...(tiGraph ? { graph: tiGraph } : {}),
        }).graph;
      };
      const session = await this.open(build, precision, 'textEncoder', `text-${batch}-${textKey(layout)}`, SESSION_KINDS.textEncoder);
      return { session, adapter: adapter?.values };
    });
  }

  private unet(batch: number, height: number, width: number, layout: AdapterLayout): Promise<AdaptedSession> {
    const precision = this.precision();
    return this.cached(`unet:${batch}x${height}x${width}:${adapterKey(layout)}:${precision}`, async () => {
      let adapter: ReturnType<PersonalizedSessions['adapterFor']>;
      const build = (at: InferencePrecision) => {
        adapter = this.adapterFor(UNET_COMPONENT, layout);
        return buildUnetGraph(this.model.unet.plan, this.model.paramSources.unet, {
          batch,
          height,
          width,
          textLength: TEXT_LENGTH,
          precision: at,
          ...(adapter ? { adapters: [adapter] } : {}),
        }).graph;
      };
      const session = await this.open(build, precision, 'unet', `unet-${batch}x${height}x${width}-${adapterKey(layout)}`, SESSION_KINDS.unet);
      return { session, adapter: adapter?.values };
    });
  }

  private vae(batch: number, height: number, width: number): Promise<AdaptedSession> {
    const precision = this.precision();
    return this.cached(`vae:${batch}x${height}x${width}:${precision}`, async () => {
      const build = (at: InferencePrecision) => buildVaeDecoderGraph(this.model.vae.plan, this.model.paramSources.vae, { batch, height, width, precision: at }).graph;
      return { session: await this.open(build, precision, 'vae', `vae-${batch}x${height}x${width}`, SESSION_KINDS.vaeDecoder), adapter: undefined };
    });
  }
}
