// Evaluator inputs: images as [batch, 3, 32, 32] in [-1, 1] (the VAE's input range), from renders or decoded samples.
import type { RgbImage } from '../render.ts';
import { EVAL_IMAGE_SIZE } from './network.ts';

/** Box-filter downsampling by an integer factor (64 → 32 px), so generated 64 px images and 32 px renders compare. */
export function toEvalSize(image: RgbImage): RgbImage {
  if (image.width === EVAL_IMAGE_SIZE && image.height === EVAL_IMAGE_SIZE) return image;
  const factor = image.width / EVAL_IMAGE_SIZE;
  if (!Number.isInteger(factor) || image.height / EVAL_IMAGE_SIZE !== factor) {
    throw new Error(`evaluator images must be square multiples of ${EVAL_IMAGE_SIZE} px, got ${image.width}×${image.height}`);
  }
  const out = new Float32Array(EVAL_IMAGE_SIZE * EVAL_IMAGE_SIZE * 3);
  const inv = 1 / (factor * factor);
  for (let y = 0; y < EVAL_IMAGE_SIZE; y++) {
    for (let x = 0; x < EVAL_IMAGE_SIZE; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = 0; dy < factor; dy++) {
          for (let dx = 0; dx < factor; dx++) sum += image.data[((y * factor + dy) * image.width + x * factor + dx) * 3 + c]!;
        }
        out[(y * EVAL_IMAGE_SIZE + x) * 3 + c] = sum * inv;
      }
    }
  }
  return { width: EVAL_IMAGE_SIZE, height: EVAL_IMAGE_SIZE, data: out };
}

/** HWC [0, 1] images → one NCHW [-1, 1] batch. */
export function toBatch(images: readonly RgbImage[]): Float32Array {
  const plane = EVAL_IMAGE_SIZE * EVAL_IMAGE_SIZE;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((raw, n) => {
    const image = toEvalSize(raw);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[(n * 3 + c) * plane + i] = image.data[i * 3 + c]! * 2 - 1;
    }
  });
  return out;
}
