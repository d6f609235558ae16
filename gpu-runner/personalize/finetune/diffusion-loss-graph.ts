// One composed graph for the diffusion loss of a personalization: CLIP text encoder (LiDB on its layers) → UNet (LiDB
// on its attention) → MSE to the noise. Gradients then flow into every adapted layer of both models in one session.
import type { TensorValue } from '../../onnx/index.ts';
import { Graph, mseLoss, type Value, weightedMseLoss } from '../../onnx/index.ts';
import { buildClipTextGraph, CLIP_TEXT_INPUT } from '../../models/clip-text/build.ts';
import { buildUnetGraph, UNET_INPUTS } from '../../models/unet/build.ts';
import { CLIP_MAX_LENGTH } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import { TEXT_ENCODER_COMPONENT, UNET_COMPONENT } from '../lidb/adapted-layers.ts';
import { createLidbAdapter, type LidbAdapterOptions, type LidbAdapterValues } from '../lidb/graph-adapter.ts';
import type { PersonalizationModel } from '../model.ts';

export const LOSS_INPUTS = { inputIds: CLIP_TEXT_INPUT, noisyLatents: UNET_INPUTS.sample, timestep: UNET_INPUTS.timestep, target: 'target', sampleWeights: 'sample_weights' } as const;
export const LOSS_OUTPUT = 'loss';

/**
 * A graph whose named parameters can be replaced by values computed from them (an embedding table with trainable
 * rows); inputs are bound with `Graph.bindInput`.
 */
export class BindingGraph extends Graph {
  private readonly redirects = new Map<string, (stored: Value) => Value>();

  /** Builders asking for parameter `name` get `replace(stored)` instead (e.g. an embedding table with trainable rows). */
  redirectParam(name: string, replace: (stored: Value) => Value): void {
    this.redirects.set(name, replace);
  }

  override param(name: string, t: TensorValue): Value {
    const stored = super.param(name, t);
    const replace = this.redirects.get(name);
    return replace ? replace(stored) : stored;
  }
}

export interface DiffusionLossGraphOptions {
  /**
   * `input`: LiDB factors are graph inputs (fixed predictions, or trainable for lidb-zero); `source`: they come from
   * `lidbSource` (e.g. a hypernetwork built earlier into `graph`); `none`: no LiDB term.
   */
  readonly lidb: 'input' | 'source' | 'none';
  readonly lidbSource?: LidbAdapterOptions['lidbSource'];
  readonly relax?: LidbAdapterOptions['relax'];
  /** Samples per run (each with its own LiDB factors when they come from a source). Default 1. */
  readonly batch?: number;
  /**
   * Loss = Σ_b w_b · MSE_b with the weights a [batch] input (`sample_weights`; e.g. [1, λ] for an instance and a
   * prior-preservation sample) instead of the mean over the batch.
   */
  readonly sampleWeights?: boolean;
  /** Build into this graph (which may already hold the LiDB source); the loss is then returned, not made an output. */
  readonly graph?: BindingGraph;
}

export interface DiffusionLossGraph {
  readonly graph: Graph;
  readonly loss: Value;
  readonly latentShape: readonly [number, number, number, number];
  /** Inputs the adapters created, per component. */
  readonly adapters: { readonly unet: LidbAdapterValues; readonly textEncoder: LidbAdapterValues };
}

export function buildDiffusionLossGraph(model: PersonalizationModel, options: DiffusionLossGraphOptions): DiffusionLossGraph {
  const g = options.graph ?? new BindingGraph('personalize_loss');
  const batch = options.batch ?? 1;
  if (options.lidb === 'source' && !options.lidbSource) throw new Error('diffusion loss graph: lidb "source" needs a lidbSource');
  const common = {
    layers: model.layers,
    bases: model.bases,
    rank: options.lidb === 'none' ? 0 : model.lidb.r,
    ...(options.relax ? { relax: options.relax } : {}),
    ...(options.lidb === 'source' ? { lidbSource: options.lidbSource } : {}),
  };
  const textAdapter = createLidbAdapter({ ...common, component: TEXT_ENCODER_COMPONENT });
  const unetAdapter = createLidbAdapter({ ...common, component: UNET_COMPONENT });

  const text = buildClipTextGraph(model.textEncoder.config, model.paramSources.textEncoder, {
    batch,
    length: CLIP_MAX_LENGTH,
    adapters: [textAdapter],
    graph: g,
  });
  g.bindInput(UNET_INPUTS.encoderHiddenStates, text.lastHiddenState);
  const latentSide = model.resolution / 2 ** (model.vae.plan.config.blockOutChannels.length - 1);
  const channels = model.unet.plan.config.inChannels;
  const unet = buildUnetGraph(model.unet.plan, model.paramSources.unet, {
    batch,
    height: latentSide,
    width: latentSide,
    textLength: CLIP_MAX_LENGTH,
    adapters: [unetAdapter],
    graph: g,
  });
  const target = g.input(LOSS_INPUTS.target, 'float32', [batch, channels, latentSide, latentSide]);
  // Epsilon prediction (SD 1.5's `prediction_type`): the UNet predicts the added noise; DreamBooth's MSE to it.
  let loss = options.sampleWeights
    ? weightedMseLoss(unet.output, target, g.input(LOSS_INPUTS.sampleWeights, 'float32', [batch]))
    : mseLoss(unet.output, target);
  g.outputs.length = 0;
  if (!options.graph) loss = g.output(loss, LOSS_OUTPUT);
  return {
    graph: g,
    loss,
    latentShape: [batch, channels, latentSide, latentSide],
    adapters: { unet: unetAdapter.values, textEncoder: textAdapter.values },
  };
}
