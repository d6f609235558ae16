import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { PIXEL_NORMALIZATION } from '../hypernetwork/config.ts';
import { decodeFaceImage, FaceImageError, preprocessFace, squareCrop } from './preprocess.ts';

const norm = PIXEL_NORMALIZATION.imagenet;

/** A width×height image whose left half is red and right half blue. */
function halves(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(x < width / 2 ? [255, 0, 0] : [0, 0, 255], (y * width + x) * 3);
  }
  return data;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(FaceImageError);
  expect((error as FaceImageError).code).toBe(code);
}

describe('face preprocessing', () => {
  it('applies EXIF orientation before cropping (orientation 6: rotate 90° clockwise)', async () => {
    const jpeg = await sharp(halves(40, 20), { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const decoded = await decodeFaceImage(jpeg);
    expect([decoded.width, decoded.height]).toEqual([20, 40]);
    const face = await preprocessFace(jpeg, { size: 8, ...norm });
    expect(face.crop).toEqual({ left: 0, top: 10, side: 20 });
    const plane = 64;
    const redAt = (row: number) => face.pixels[row * 8 + 4]! * norm.std[0] + norm.mean[0];
    const blueAt = (row: number) => face.pixels[2 * plane + row * 8 + 4]! * norm.std[2] + norm.mean[2];
    // The stored left (red) half is on top once upright.
    expect(redAt(1)).toBeGreaterThan(0.8);
    expect(blueAt(1)).toBeLessThan(0.2);
    expect(redAt(6)).toBeLessThan(0.2);
    expect(blueAt(6)).toBeGreaterThan(0.8);
  });

  it('normalizes to (v/255 − mean)/std in CHW order at the encoder size', async () => {
    const grey = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(128) };
    const face = await preprocessFace(grey, { size: 4, ...norm });
    expect(face.pixels).toHaveLength(3 * 16);
    for (let c = 0; c < 3; c++) expect(face.pixels[c * 16]).toBeCloseTo((128 / 255 - norm.mean[c]!) / norm.std[c]!, 5);
  });

  it('crops a square around the face box with a margin, kept inside the image', () => {
    expect(squareCrop(100, 80, { x: 40, y: 30, width: 20, height: 10 }, 0.5)).toEqual({ left: 35, top: 20, side: 30 });
    expect(squareCrop(100, 80, { x: 0, y: 0, width: 20, height: 20 }, 0.5)).toEqual({ left: 0, top: 0, side: 30 });
    expect(squareCrop(100, 80, { x: 10, y: 10, width: 90, height: 70 }, 0.5).side).toBe(80);
    expect(squareCrop(100, 80)).toEqual({ left: 10, top: 0, side: 80 });
    expect(() => squareCrop(100, 80, { x: 200, y: 0, width: 10, height: 10 })).toThrow(/outside/);
    expect(() => squareCrop(100, 80, { x: 0, y: 0, width: -1, height: 10 })).toThrow(FaceImageError);
  });

  it('gives clear errors for an empty input, not an image, too many pixels, and a truncated file', async () => {
    await expectCode(decodeFaceImage(new Uint8Array()), 'empty');
    await expectCode(decodeFaceImage(new TextEncoder().encode('definitely not a picture')), 'not_an_image');
    const big = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#808080' } }).png().toBuffer();
    await expectCode(decodeFaceImage(big, 10_000), 'too_large');
    const jpeg = await sharp(halves(64, 64), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    await expectCode(decodeFaceImage(jpeg.subarray(0, Math.floor(jpeg.length / 2))), 'truncated');
  });
});
