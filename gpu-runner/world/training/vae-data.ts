// Batches for the VAE: renders of the world's TRAIN identities as NCHW in [-1, 1] (the VAE's input range), a pure
// function of (world, step), so a resumed run sees exactly the batches the uninterrupted run would have.
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { EYE_COLOURS } from '../attributes.ts';
import { DEFAULT_WORLD, renderSample, sampleAt, type Sample, type Split, type WorldConfig } from '../dataset.ts';
import type { RgbImage } from '../render.ts';

export function worldAt(size: number, base: WorldConfig = DEFAULT_WORLD): WorldConfig {
  return { ...base, size };
}

/** HWC [0, 1] images → one NCHW [-1, 1] batch. */
export function imagesToNchw(images: readonly RgbImage[]): Float32Array {
  const { width, height } = images[0]!;
  const plane = width * height;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((image, n) => {
    if (image.width !== width || image.height !== height) throw new Error('a batch needs images of one size');
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[(n * 3 + c) * plane + i] = image.data[i * 3 + c]! * 2 - 1;
    }
  });
  return out;
}

/** NCHW [-1, 1] → HWC [0, 1] images, clamped (as a pipeline's `(x / 2 + 0.5).clamp(0, 1)`). */
export function nchwToImages(data: Float32Array, batch: number, size: number): RgbImage[] {
  const plane = size * size;
  return Array.from({ length: batch }, (_, n) => {
    const out = new Float32Array(plane * 3);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.min(1, Math.max(0, data[(n * 3 + c) * plane + i]! / 2 + 0.5));
    }
    return { width: size, height: size, data: out };
  });
}

/** The samples of training step `step`: consecutive indices of the train split, never repeating. */
export function trainSamples(world: WorldConfig, step: number, batch: number): Sample[] {
  return Array.from({ length: batch }, (_, i) => sampleAt(world, 'train', step * batch + i));
}

export function splitSamples(world: WorldConfig, split: Split, count: number, offset = 0): Sample[] {
  return Array.from({ length: count }, (_, i) => sampleAt(world, split, offset + i));
}

/** The reparameterization noise of step `step`, seeded by name so resume reproduces it. */
export function stepNoise(seed: number, step: number, count: number): Float32Array {
  return fillGaussianFloat32(namedRng(seed, `world-vae/noise/${step}`), count, 1);
}

/** A pixel is an eye pixel when repainting the eyes moves its colour by more than this (sum of |ΔRGB|). */
const EYE_CHANGE_THRESHOLD = 0.05;

/**
 * Per-pixel loss weights, NCHW [batch, 1, H, W]: 1 everywhere, 1 + `eyeWeight` on the iris pixels. The iris is found
 * the way the colour probe finds it, by re-rendering the sample with another eye colour (every pair of the palette
 * differs by far more than the threshold), so it follows shift, scale, glasses and styles exactly.
 */
export function eyePixelWeights(samples: readonly Sample[], eyeWeight: number): Float32Array {
  const { width, height } = samples[0]!.image;
  const plane = width * height;
  const out = new Float32Array(samples.length * plane).fill(1);
  samples.forEach((s, n) => {
    const other = { ...s.identity, eyeColour: (s.identity.eyeColour + 1) % EYE_COLOURS.length };
    const repainted = renderSample(other, s.context, s.nuisance, width).data;
    const original = s.image.data;
    for (let i = 0; i < plane; i++) {
      const change = Math.abs(repainted[i * 3]! - original[i * 3]!) + Math.abs(repainted[i * 3 + 1]! - original[i * 3 + 1]!) + Math.abs(repainted[i * 3 + 2]! - original[i * 3 + 2]!);
      if (change > EYE_CHANGE_THRESHOLD) out[n * plane + i] = 1 + eyeWeight;
    }
  });
  return out;
}
