// Decoding untrusted image bytes before any work starts: a pixel limit checked before pixels are allocated, only
// the formats the edge accepts, truncated files refused instead of silently padded with grey.
import sharp from 'sharp';
import { LIMITS } from '../../../contract/index.ts';
import { InvalidInputError, type RgbImage } from '../jobs/executor.ts';

const ACCEPTED_FORMATS: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };
/** A face photo smaller than this holds too little to personalize from (the edge refuses it too, docs/api.md). */
export const MIN_INPUT_IMAGE_SIDE = LIMITS.minImageSide;

export type ImageExpectation = {
  maxPixels: number;
  /** What the edge declared; a mismatch means the bytes are not the image the edge checked. */
  contentType?: string;
  width?: number;
  height?: number;
};

/** Decodes to 8-bit sRGB RGB pixels, EXIF orientation applied, alpha dropped. */
export async function decodeImage(bytes: Uint8Array, expect: ImageExpectation, label = 'image'): Promise<RgbImage> {
  // `failOn: 'truncated'` makes libvips fail on a cut-off file rather than return a partially grey image;
  // `limitInputPixels` refuses decompression bombs before decoding.
  const options = { failOn: 'truncated' as const, limitInputPixels: expect.maxPixels };
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(bytes, options).metadata();
  } catch (error) {
    throw new InvalidInputError(`${label} is not a readable JPEG, PNG or WebP image (${reason(error)})`);
  }
  const contentType = metadata.format ? ACCEPTED_FORMATS[metadata.format] : undefined;
  if (!contentType) throw new InvalidInputError(`${label} has format ${metadata.format ?? 'unknown'}; JPEG, PNG or WebP expected`);
  if (expect.contentType && expect.contentType !== contentType) {
    throw new InvalidInputError(`${label} is declared ${expect.contentType} but its bytes are ${contentType}`);
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (width * height > expect.maxPixels) {
    throw new InvalidInputError(`${label} has ${width}×${height} pixels, more than the limit of ${expect.maxPixels}`);
  }
  if (Math.min(width, height) < MIN_INPUT_IMAGE_SIDE) {
    throw new InvalidInputError(`${label} is ${width}×${height}; each side must be at least ${MIN_INPUT_IMAGE_SIDE} px`);
  }
  if ((expect.width !== undefined && expect.width !== width) || (expect.height !== undefined && expect.height !== height)) {
    throw new InvalidInputError(`${label} is declared ${expect.width}×${expect.height} but decodes to ${width}×${height}`);
  }
  try {
    const { data, info } = await sharp(bytes, options)
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    throw new InvalidInputError(`${label} could not be decoded, it may be truncated or corrupt (${reason(error)})`);
  }
}

/** Encodes RGB pixels as PNG (the generation result format, CONTRACT.md). */
export async function encodePng(image: RgbImage): Promise<Uint8Array> {
  const expected = image.width * image.height * image.channels;
  if (image.data.length !== expected) {
    throw new Error(`image buffer holds ${image.data.length} bytes, ${image.width}×${image.height}×3 = ${expected} expected`);
  }
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
