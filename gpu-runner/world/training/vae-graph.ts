// The VAE's training graph and its reconstruction graph, built from the SD 1.5 builders (models/vae/build.ts).
// Training: encode → z = mean + std · noise (the reparameterization trick; the noise is a graph input, seeded per step,
// so a resumed run sees the same noise) → decode → loss = MSE + L1 + klWeight · mean KL (docs/world.md).
import { abs, add, Graph, mul, reduceMean, sub, type Value } from '../../onnx/index.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph, VAE_DECODE, VAE_ENCODE } from '../../models/vae/build.ts';
import { vaeInventory } from '../../models/vae/inventory.ts';
import { placeholderParams } from '../../models/params.ts';
import { TrainableGraph } from './trainable-graph.ts';
import type { WorldVae } from './vae-config.ts';

export const VAE_TRAIN_INPUTS = { images: VAE_ENCODE.input, noise: 'noise', pixelWeights: 'pixel_weights' } as const;
export const VAE_TRAIN_OUTPUTS = { loss: 'loss', mse: 'mse', l1: 'l1', kl: 'kl' } as const;

export interface VaeTrainingGraph {
  readonly graph: Graph;
  readonly loss: Value;
  /** Loss terms to log: MSE, L1, mean KL. */
  readonly terms: readonly Value[];
}

/**
 * Mean over latent elements of KL(N(μ, σ²) ‖ N(0, 1)) = ½ (μ² + σ² − 1 − log σ²) (LDM's DiagonalGaussianDistribution,
 * averaged instead of summed: the "1e-5 · mean KL" of docs/world.md).
 */
function meanKl(mean: Value, logvar: Value, std: Value): Value {
  const terms = sub(add(mul(mean, mean), mul(std, std)), add(logvar, 1));
  return mul(reduceMean(terms), 0.5);
}

/**
 * `pixelWeighted`: the reconstruction terms become means of w · d² and w · |d| with a per-pixel weight input
 * (`pixel_weights`, [batch, 1, H, W], shared by the three channels), so small identity features (the eyes) can count
 * for more than their share of pixels; the logged MSE and L1 stay unweighted.
 */
export function buildVaeTrainingGraph(vae: WorldVae, batch: number, klWeight: number, pixelWeighted = false): VaeTrainingGraph {
  const names = new Set(vaeInventory(vae.plan).map((p) => p.name));
  const g = new TrainableGraph('world_vae_train', names);
  const side = vae.imageSize;
  buildVaeEncoderGraph(vae.plan, placeholderParams(), { batch, height: side, width: side, graph: g });
  const images = g.value(VAE_ENCODE.input);
  const mean = g.value(VAE_ENCODE.mean);
  const logvar = g.value(VAE_ENCODE.logvar);
  const std = g.value(VAE_ENCODE.std);
  const noise = g.input(VAE_TRAIN_INPUTS.noise, 'float32', [batch, vae.config.latentChannels, vae.latentSize, vae.latentSize]);
  g.bindInput(VAE_DECODE.input, add(mean, mul(std, noise)));
  buildVaeDecoderGraph(vae.plan, placeholderParams(), { batch, height: vae.latentSize, width: vae.latentSize, graph: g });
  const reconstruction = g.value(VAE_DECODE.output);

  const diff = sub(reconstruction, images);
  const mse = reduceMean(mul(diff, diff));
  const l1 = reduceMean(abs(diff));
  const kl = meanKl(mean, logvar, std);
  let reconstructionLoss = add(mse, l1);
  if (pixelWeighted) {
    const weights = g.input(VAE_TRAIN_INPUTS.pixelWeights, 'float32', [batch, 1, side, side]);
    reconstructionLoss = add(reduceMean(mul(mul(diff, diff), weights)), reduceMean(mul(abs(diff), weights)));
  }
  const loss = add(reconstructionLoss, mul(kl, klWeight));
  const terms = [g.output(mse, VAE_TRAIN_OUTPUTS.mse), g.output(l1, VAE_TRAIN_OUTPUTS.l1), g.output(kl, VAE_TRAIN_OUTPUTS.kl)];
  return { graph: g, loss: g.output(loss, VAE_TRAIN_OUTPUTS.loss), terms };
}

export const VAE_RECONSTRUCT = { input: VAE_ENCODE.input, latents: VAE_ENCODE.mean, output: VAE_DECODE.output } as const;

/**
 * Inference: images → the posterior mean (the latents, unscaled) → decoded images. The weights are graph inputs too,
 * so one cached session serves every checkpoint.
 */
export function buildVaeReconstructionGraph(vae: WorldVae, batch: number): Graph {
  const g = new TrainableGraph('world_vae_reconstruct', new Set(vaeInventory(vae.plan).map((p) => p.name)));
  const side = vae.imageSize;
  buildVaeEncoderGraph(vae.plan, placeholderParams(), { batch, height: side, width: side, graph: g });
  g.bindInput(VAE_DECODE.input, g.value(VAE_ENCODE.mean));
  buildVaeDecoderGraph(vae.plan, placeholderParams(), { batch, height: vae.latentSize, width: vae.latentSize, graph: g });
  g.outputs.splice(0, g.outputs.length, VAE_RECONSTRUCT.latents, VAE_RECONSTRUCT.output);
  return g;
}
