import sharp from 'sharp';
import type { RgbImage } from './render.ts';

export function toRgbBytes(image: RgbImage): Uint8Array {
  const out = new Uint8Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, image.data[i]!)) * 255);
  return out;
}

export async function encodePng(image: RgbImage): Promise<Buffer> {
  return sharp(toRgbBytes(image), { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

/** Tiles equally sized images into a grid (rows × cols), for sample sheets a person can judge. */
export function tile(images: readonly RgbImage[], cols: number): RgbImage {
  if (images.length === 0) throw new Error('tile needs at least one image');
  const { width: w, height: h } = images[0]!;
  const rows = Math.ceil(images.length / cols);
  const data = new Float32Array(rows * h * cols * w * 3).fill(1);
  images.forEach((img, k) => {
    if (img.width !== w || img.height !== h) throw new Error('tile needs images of one size');
    const ox = (k % cols) * w;
    const oy = Math.floor(k / cols) * h;
    for (let y = 0; y < h; y++) data.set(img.data.subarray(y * w * 3, (y + 1) * w * 3), ((oy + y) * cols * w + ox) * 3);
  });
  return { width: cols * w, height: rows * h, data };
}
