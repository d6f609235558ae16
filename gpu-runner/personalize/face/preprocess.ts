// Face photo → encoder input: decode (sharp, pixel limit, truncation refused), EXIF orientation, square crop around the
// face box (or the centre), resize, per-channel normalization, CHW float32.
import sharp from 'sharp';
import { z } from 'zod';

/** Decoded-pixel limit by default: 40 MP covers phone cameras (48 MP sensors bin to 12 MP) and refuses bombs. */
export const DEFAULT_MAX_INPUT_PIXELS = 40_000_000;
/**
 * Context kept around a detected face box: the square's side is (1 + margin) × the box's longer side, so hair and chin
 * stay in view as in the paper's CelebA-HQ crops (which frame the whole head).
 */
export const DEFAULT_BOX_MARGIN = 0.6;

export type FaceImageErrorCode = 'empty' | 'not_an_image' | 'too_large' | 'truncated' | 'bad_box';

export class FaceImageError extends Error {
  constructor(
    readonly code: FaceImageErrorCode,
    message: string,
  ) {
    super(`face image: ${message}`);
    this.name = 'FaceImageError';
  }
}

export const faceBoxSchema = z.object({
  x: z.number().finite(),
  y: z.number().finite(),
  width: z.number().positive(),
  height: z.number().positive(),
});
/** A face box in pixel coordinates of the upright (orientation-corrected) image. */
export type FaceBox = z.infer<typeof faceBoxSchema>;

export interface RgbPixels {
  readonly width: number;
  readonly height: number;
  /** 8-bit RGB, row-major, 3 bytes per pixel. */
  readonly data: Uint8Array;
}

export interface FacePreprocessOptions {
  /** Encoder input side (the ViT's image size). */
  readonly size: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly box?: FaceBox;
  readonly boxMargin?: number;
  readonly maxPixels?: number;
}

export interface PreprocessedFace {
  /** [3, size, size] normalized, channel-major. */
  readonly pixels: Float32Array;
  readonly size: number;
  /** The square taken from the upright image. */
  readonly crop: { readonly left: number; readonly top: number; readonly side: number };
  readonly source: { readonly width: number; readonly height: number };
}

function classify(error: unknown): FaceImageError {
  const message = error instanceof Error ? error.message : String(error);
  if (/empty/i.test(message)) return new FaceImageError('empty', 'the input is empty');
  if (/unsupported image format|bad seek|not a known file format/i.test(message)) return new FaceImageError('not_an_image', `the bytes are not an image sharp can decode (${message})`);
  if (/pixel limit/i.test(message)) return new FaceImageError('too_large', `the image has more pixels than allowed (${message})`);
  return new FaceImageError('truncated', `the image is truncated or corrupt (${message})`);
}

/** Decodes untrusted bytes to upright 8-bit sRGB RGB. */
export async function decodeFaceImage(bytes: Uint8Array, maxPixels = DEFAULT_MAX_INPUT_PIXELS): Promise<RgbPixels> {
  if (bytes.byteLength === 0) throw new FaceImageError('empty', 'the input is empty');
  const options = { failOn: 'truncated' as const, limitInputPixels: maxPixels };
  try {
    const meta = await sharp(bytes, options).metadata();
    if ((meta.width ?? 0) * (meta.height ?? 0) > maxPixels) {
      throw new FaceImageError('too_large', `the image is ${meta.width}×${meta.height}, more than ${maxPixels} pixels`);
    }
    const { data, info } = await sharp(bytes, options).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    if (error instanceof FaceImageError) throw error;
    throw classify(error);
  }
}

/** The square crop: around the box (grown by the margin, clamped inside the image), or the largest centred square. */
export function squareCrop(width: number, height: number, box?: FaceBox, margin = DEFAULT_BOX_MARGIN): { left: number; top: number; side: number } {
  const limit = Math.min(width, height);
  if (!box) return { left: Math.floor((width - limit) / 2), top: Math.floor((height - limit) / 2), side: limit };
  const parsed = faceBoxSchema.safeParse(box);
  if (!parsed.success) throw new FaceImageError('bad_box', `the face box is invalid: ${z.prettifyError(parsed.error)}`);
  const b = parsed.data;
  if (b.x >= width || b.y >= height || b.x + b.width <= 0 || b.y + b.height <= 0) {
    throw new FaceImageError('bad_box', `the face box (${b.x}, ${b.y}, ${b.width}×${b.height}) lies outside the ${width}×${height} image`);
  }
  const side = Math.max(1, Math.min(limit, Math.round(Math.max(b.width, b.height) * (1 + margin))));
  const centreX = b.x + b.width / 2;
  const centreY = b.y + b.height / 2;
  const left = Math.min(Math.max(0, Math.round(centreX - side / 2)), width - side);
  const top = Math.min(Math.max(0, Math.round(centreY - side / 2)), height - side);
  return { left, top, side };
}

export async function preprocessFace(input: Uint8Array | RgbPixels, options: FacePreprocessOptions): Promise<PreprocessedFace> {
  const image = input instanceof Uint8Array ? await decodeFaceImage(input, options.maxPixels) : input;
  if (image.data.length !== image.width * image.height * 3) {
    throw new FaceImageError('not_an_image', `RGB buffer holds ${image.data.length} bytes, ${image.width}×${image.height}×3 expected`);
  }
  const crop = squareCrop(image.width, image.height, options.box, options.boxMargin);
  const { size } = options;
  // Bicubic, as CLIP/timm preprocessing (PIL BICUBIC); sharp antialiases when shrinking.
  const resized = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .extract({ left: crop.left, top: crop.top, width: crop.side, height: crop.side })
    .resize(size, size, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer();
  const plane = size * size;
  const pixels = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) pixels[c * plane + i] = (resized[i * 3 + c]! / 255 - options.mean[c]!) / options.std[c]!;
  }
  return { pixels, size, crop, source: { width: image.width, height: image.height } };
}
