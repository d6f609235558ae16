// Prompt-controlled styles applied after rendering. They keep the face's geometry (and, tinted, its colours)
// so identity stays recognisable, as the paper's style prompts do ("a sketch of a [V] face").
import type { RgbImage } from './render.ts';
import type { Style } from './attributes.ts';

const PIXEL_BLOCK = 4;
const PIXEL_LEVELS = 4;
const SKETCH_PAPER = [0.97, 0.95, 0.9] as const;
const SKETCH_TINT = 0.6; // how much of the original colour stays under the pencil
const SKETCH_EDGE_GAIN = 2; // 4 inked a 3–4 px iris almost black, so no network could read its colour

function luminance(d: Float32Array, o: number): number {
  return 0.299 * d[o]! + 0.587 * d[o + 1]! + 0.114 * d[o + 2]!;
}

function sketch(image: RgbImage): RgbImage {
  const { width: w, height: h, data } = image;
  const out = new Float32Array(data.length);
  const lum = (x: number, y: number) =>
    luminance(data, (Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const gx = lum(x + 1, y - 1) + 2 * lum(x + 1, y) + lum(x + 1, y + 1) - lum(x - 1, y - 1) - 2 * lum(x - 1, y) - lum(x - 1, y + 1);
      const gy = lum(x - 1, y + 1) + 2 * lum(x, y + 1) + lum(x + 1, y + 1) - lum(x - 1, y - 1) - 2 * lum(x, y - 1) - lum(x + 1, y - 1);
      const ink = Math.min(1, Math.hypot(gx, gy) * SKETCH_EDGE_GAIN / 4);
      const o = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) {
        const paper = SKETCH_PAPER[c]! * (1 - SKETCH_TINT) + data[o + c]! * SKETCH_TINT;
        out[o + c] = paper * (1 - ink);
      }
    }
  }
  return { width: w, height: h, data: out };
}

function pixelArt(image: RgbImage): RgbImage {
  const { width: w, height: h, data } = image;
  const out = new Float32Array(data.length);
  const block = Math.max(1, Math.round((PIXEL_BLOCK * w) / 64));
  for (let by = 0; by < h; by += block) {
    for (let bx = 0; bx < w; bx += block) {
      const mean = [0, 0, 0];
      let n = 0;
      for (let y = by; y < Math.min(h, by + block); y++) {
        for (let x = bx; x < Math.min(w, bx + block); x++, n++) {
          for (let c = 0; c < 3; c++) mean[c]! += data[(y * w + x) * 3 + c]!;
        }
      }
      const q = mean.map((m) => Math.round((m / n) * (PIXEL_LEVELS - 1)) / (PIXEL_LEVELS - 1));
      for (let y = by; y < Math.min(h, by + block); y++) {
        for (let x = bx; x < Math.min(w, bx + block); x++) {
          for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = q[c]!;
        }
      }
    }
  }
  return { width: w, height: h, data: out };
}

export function applyStyle(image: RgbImage, style: Style): RgbImage {
  switch (style) {
    case 'photo':
      return image;
    case 'sketch':
      return sketch(image);
    case 'pixel art':
      return pixelArt(image);
  }
}
