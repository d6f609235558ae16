// Everything personalization needs from a model pack, loaded once: the SD components, tokenizer, training noise
// schedule, the adapted layers with their frozen aux bases, and (when trained) the hypernetwork.
import { inlineParams, type ParamSource } from '../models/params.ts';
import type { TextEncoderComponent, UnetComponent, VaeComponent } from '../models/checkpoint/diffusers-folder.ts';
import { alphasCumprod, type TrainingScheduleConfig } from '../diffusion/schedulers/noise-schedule.ts';
import type { ClipTokenizer } from '../diffusion/tokenizer/clip-tokenizer.ts';
import { type AdaptedLayer, adaptedLayers, type AdaptedLayerSelection, adaptedLayerSelectionSchema } from './lidb/adapted-layers.ts';
import type { AuxBasis } from './lidb/aux-basis.ts';
import { auxBases } from './lidb/aux-bases.ts';
import { type LidbSettings, lidbSettings } from './lidb/settings.ts';
import type { HypernetworkConfig } from './hypernetwork/config.ts';
import { type HeadLayout, headLayouts } from './hypernetwork/inventory.ts';

/** SD 1.5's `scheduler/scheduler_config.json` training schedule (scaled_linear 0.00085 → 0.012 over 1000 steps). */
export const SD15_TRAINING_SCHEDULE: TrainingScheduleConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
};

export interface PersonalizationModel {
  readonly id: string;
  /** Hex SHA-256 identifying the base weights; written into every weight file. */
  readonly sha256: string;
  readonly unet: UnetComponent;
  readonly textEncoder: TextEncoderComponent;
  readonly vae: VaeComponent;
  readonly tokenizer: ClipTokenizer;
  readonly alphasCumprod: Float32Array;
  /** Side of the square image the VAE encodes for finetuning (512 for SD 1.5; 8 × the UNet's sample size). */
  readonly resolution: number;
  readonly lidb: LidbSettings;
  readonly selection: AdaptedLayerSelection;
  readonly layers: readonly AdaptedLayer[];
  readonly bases: readonly AuxBasis[];
  readonly hypernetwork?: { readonly config: HypernetworkConfig; readonly heads: readonly HeadLayout[]; readonly params: ReadonlyMap<string, Float32Array> };
  /**
   * Where graph weights come from: inline copies by default (small models); full-size models need external data
   * (`externalParams`), and their graphs must then be saved beside the weights before a session opens them.
   */
  readonly paramSources: { readonly unet: ParamSource; readonly textEncoder: ParamSource; readonly vae: ParamSource };
}

export interface PersonalizationModelInput {
  id: string;
  sha256: string;
  unet: UnetComponent;
  textEncoder: TextEncoderComponent;
  vae: VaeComponent;
  tokenizer: ClipTokenizer;
  schedule?: TrainingScheduleConfig;
  resolution?: number;
  lidb?: Partial<LidbSettings>;
  selection?: Partial<AdaptedLayerSelection>;
  hypernetwork?: { config: HypernetworkConfig; params: ReadonlyMap<string, Float32Array> };
  paramSources?: Partial<PersonalizationModel['paramSources']>;
}

/** The VAE's spatial downsampling: one factor 2 per encoder block after the first. */
function vaeDownscale(vae: VaeComponent): number {
  return 2 ** (vae.plan.config.blockOutChannels.length - 1);
}

export function createPersonalizationModel(input: PersonalizationModelInput): PersonalizationModel {
  const settings = lidbSettings(input.lidb);
  const selection = adaptedLayerSelectionSchema.parse(input.selection ?? {});
  const layers = adaptedLayers({ unet: input.unet.plan, textEncoder: input.textEncoder.config }, selection);
  const sampleSize = input.unet.plan.config.sampleSize;
  const resolution = input.resolution ?? (typeof sampleSize === 'number' ? sampleSize * vaeDownscale(input.vae) : 512);
  return {
    id: input.id,
    sha256: input.sha256,
    unet: input.unet,
    textEncoder: input.textEncoder,
    vae: input.vae,
    tokenizer: input.tokenizer,
    alphasCumprod: alphasCumprod(input.schedule ?? SD15_TRAINING_SCHEDULE),
    resolution,
    lidb: settings,
    selection,
    layers,
    bases: auxBases(layers, settings),
    ...(input.hypernetwork ? { hypernetwork: { ...input.hypernetwork, heads: headLayouts(layers, settings) } } : {}),
    paramSources: {
      unet: input.paramSources?.unet ?? inlineParams(input.unet.weights),
      textEncoder: input.paramSources?.textEncoder ?? inlineParams(input.textEncoder.weights),
      vae: input.paramSources?.vae ?? inlineParams(input.vae.weights),
    },
  };
}
