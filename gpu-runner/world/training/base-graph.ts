// The base model's training graph, built from the SD 1.5 builders (models/clip-text/build.ts, models/unet/build.ts):
// input_ids → text encoder → last_hidden_state, bound as the UNet's encoder_hidden_states; the UNet predicts the noise
// of the noisy latents at the given timesteps; loss = mean over the batch of w_b · MSE_b (w_b: min-SNR weights, fed per
// row, so the graph does not know the schedule). Every weight of both models is a graph input (one session, all steps).
import { mul, reduceMean, sub, type Graph, type Value } from '../../onnx/index.ts';
import { buildClipTextGraph, CLIP_TEXT_INPUT } from '../../models/clip-text/build.ts';
import { clipTextInventory } from '../../models/clip-text/inventory.ts';
import { placeholderParams } from '../../models/params.ts';
import { buildUnetGraph, UNET_INPUTS } from '../../models/unet/build.ts';
import { unetInventory } from '../../models/unet/inventory.ts';
import { BASE_TEXT_LENGTH, type BaseModel } from './base-config.ts';
import { TrainableGraph } from './trainable-graph.ts';

export const BASE_TRAIN_INPUTS = {
  inputIds: CLIP_TEXT_INPUT,
  noisyLatents: UNET_INPUTS.sample,
  timestep: UNET_INPUTS.timestep,
  noise: 'noise',
  lossWeight: 'loss_weight',
} as const;
export const BASE_TRAIN_OUTPUTS = { loss: 'loss', mse: 'mse' } as const;

export interface BaseTrainingGraph {
  readonly graph: Graph;
  readonly loss: Value;
  /** Unweighted MSE of the noise prediction (the loss before min-SNR weighting), for the log. */
  readonly terms: readonly Value[];
}

export function baseParameterNames(model: BaseModel): { unet: string[]; textEncoder: string[] } {
  return { unet: unetInventory(model.unet).map((p) => p.name), textEncoder: clipTextInventory(model.text).map((p) => p.name) };
}

export function buildBaseTrainingGraph(model: BaseModel, batch: number): BaseTrainingGraph {
  const names = baseParameterNames(model);
  const g = new TrainableGraph('world_base_train', new Set([...names.unet, ...names.textEncoder]));
  const { lastHiddenState } = buildClipTextGraph(model.text, placeholderParams(), { batch, length: BASE_TEXT_LENGTH, graph: g });
  g.bindInput(UNET_INPUTS.encoderHiddenStates, lastHiddenState);
  const side = model.unet.config.sampleSize;
  if (side === null) throw new Error('the base UNet config needs a sample_size (the latent side)');
  const { output } = buildUnetGraph(model.unet, placeholderParams(), { batch, height: side, width: side, textLength: BASE_TEXT_LENGTH, graph: g });
  const channels = model.unet.config.outChannels;
  const noise = g.input(BASE_TRAIN_INPUTS.noise, 'float32', [batch, channels, side, side]);
  const weight = g.input(BASE_TRAIN_INPUTS.lossWeight, 'float32', [batch, 1, 1, 1]);
  const diff = sub(output, noise);
  const squared = mul(diff, diff);
  const mse = reduceMean(squared);
  const loss = reduceMean(mul(squared, weight));
  g.outputs.splice(0, g.outputs.length);
  const terms = [g.output(mse, BASE_TRAIN_OUTPUTS.mse)];
  return { graph: g, loss: g.output(loss, BASE_TRAIN_OUTPUTS.loss), terms };
}
