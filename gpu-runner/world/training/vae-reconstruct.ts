// Runs a VAE's weights on images: reconstructions (for the gate) and latents (for the scaling factor).
import { serializeModel } from '../../onnx/index.ts';
import type { ParamSet } from '../../onnx/optim/index.ts';
import { createSessionRunner, float32Tensor, type RuntimeTensor, type SessionRunner } from '../../onnx/runtime/index.ts';
import { vaeInventory } from '../../models/vae/inventory.ts';
import type { RgbImage } from '../render.ts';
import type { WorldVae } from './vae-config.ts';
import { imagesToNchw, nchwToImages } from './vae-data.ts';
import { buildVaeReconstructionGraph, VAE_RECONSTRUCT } from './vae-graph.ts';

const RECONSTRUCT_BATCH = 16;

export class VaeReconstructor {
  private constructor(
    private readonly vae: WorldVae,
    private readonly runner: SessionRunner,
    private readonly weights: Record<string, RuntimeTensor>,
  ) {}

  static async open(vae: WorldVae, params: ParamSet): Promise<VaeReconstructor> {
    const weights: Record<string, RuntimeTensor> = {};
    for (const spec of vaeInventory(vae.plan)) {
      const data = params[spec.name];
      if (!data) throw new Error(`VAE weights lack "${spec.name}"`);
      weights[spec.name] = float32Tensor(data, [...spec.shape]);
    }
    const runner = await createSessionRunner(serializeModel(buildVaeReconstructionGraph(vae, RECONSTRUCT_BATCH)));
    return new VaeReconstructor(vae, runner, weights);
  }

  /** Reconstructions (clamped to [0, 1]) and the unscaled latents (posterior means), image by image. */
  async run(images: readonly RgbImage[]): Promise<{ images: RgbImage[]; latents: Float32Array[] }> {
    const { imageSize, latentSize, config } = this.vae;
    const latentLength = config.latentChannels * latentSize * latentSize;
    const out: RgbImage[] = [];
    const latents: Float32Array[] = [];
    for (let start = 0; start < images.length; start += RECONSTRUCT_BATCH) {
      const chunk = images.slice(start, start + RECONSTRUCT_BATCH);
      // The session has a static batch: pad the last chunk by repeating its first image, then drop the padding.
      const padded = [...chunk, ...Array.from({ length: RECONSTRUCT_BATCH - chunk.length }, () => chunk[0]!)];
      const result = await this.runner.run({
        ...this.weights,
        [VAE_RECONSTRUCT.input]: float32Tensor(imagesToNchw(padded), [RECONSTRUCT_BATCH, 3, imageSize, imageSize]),
      });
      const decoded = nchwToImages(result[VAE_RECONSTRUCT.output]!.data as Float32Array, RECONSTRUCT_BATCH, imageSize);
      const mean = result[VAE_RECONSTRUCT.latents]!.data as Float32Array;
      for (let i = 0; i < chunk.length; i++) {
        out.push(decoded[i]!);
        latents.push(mean.slice(i * latentLength, (i + 1) * latentLength));
      }
    }
    return { images: out, latents };
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}

/** 1 / std of all latent elements (LDM §4.3: rescale latents to unit variance before the diffusion model sees them). */
export function scalingFactorOf(latents: readonly Float32Array[]): number {
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  for (const l of latents) {
    for (const v of l) {
      n++;
      sum += v;
      sumSq += v * v;
    }
  }
  const mean = sum / n;
  return 1 / Math.sqrt(sumSq / n - mean * mean);
}
