// The part of sharp the personalization library calls on raw pixels (face/preprocess.ts: crop, then a cubic resize to
// the encoder's side), in plain JavaScript for the browser bundle. The page decodes photos itself (createImageBitmap)
// and hands the library RGB pixels, so encoded input, metadata and PNG output are not here. At the same size the
// resize is the identity, as in sharp; when shrinking, a Catmull-Rom kernel widened by the scale (antialiasing, as
// libvips's reduce does), so the pixels are close to sharp's, not identical.
interface RawInput {
  raw: { width: number; height: number; channels: number };
}

const catmullRom = (x: number) => {
  const a = Math.abs(x);
  if (a < 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
};

/** One axis: output index → (first source index, weights). */
function axisWeights(from: number, to: number): { start: number; weights: number[] }[] {
  const scale = from / to;
  const stretch = Math.max(scale, 1);
  const support = 2 * stretch;
  return Array.from({ length: to }, (_, i) => {
    const centre = (i + 0.5) * scale;
    const start = Math.max(0, Math.floor(centre - support));
    const end = Math.min(from, Math.ceil(centre + support));
    const weights = Array.from({ length: end - start }, (_, k) => catmullRom((start + k + 0.5 - centre) / stretch));
    const sum = weights.reduce((s, w) => s + w, 0);
    return { start, weights: weights.map((w) => w / sum) };
  });
}

function resizeRgb(src: Uint8Array, width: number, height: number, toWidth: number, toHeight: number, channels: number): Uint8Array {
  if (width === toWidth && height === toHeight) return src.slice();
  const xs = axisWeights(width, toWidth);
  const ys = axisWeights(height, toHeight);
  const rows = new Float32Array(height * toWidth * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < toWidth; x++) {
      const { start, weights } = xs[x]!;
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        weights.forEach((w, k) => (sum += w * src[(y * width + start + k) * channels + c]!));
        rows[(y * toWidth + x) * channels + c] = sum;
      }
    }
  }
  const out = new Uint8Array(toWidth * toHeight * channels);
  for (let y = 0; y < toHeight; y++) {
    const { start, weights } = ys[y]!;
    for (let x = 0; x < toWidth; x++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        weights.forEach((w, k) => (sum += w * rows[((start + k) * toWidth + x) * channels + c]!));
        out[(y * toWidth + x) * channels + c] = Math.min(255, Math.max(0, Math.round(sum)));
      }
    }
  }
  return out;
}

class RawPipeline {
  private region: { left: number; top: number; width: number; height: number } | undefined;
  private size: { width: number; height: number } | undefined;

  constructor(
    private readonly data: Uint8Array,
    private readonly input: RawInput['raw'],
  ) {}

  extract(region: { left: number; top: number; width: number; height: number }): this {
    this.region = region;
    return this;
  }

  resize(width: number, height: number, _options?: { kernel?: string; fit?: string }): this {
    this.size = { width, height };
    return this;
  }

  raw(): this {
    return this;
  }

  async toBuffer(): Promise<Uint8Array> {
    const { width, height, channels } = this.input;
    const r = this.region ?? { left: 0, top: 0, width, height };
    const cropped = new Uint8Array(r.width * r.height * channels);
    for (let y = 0; y < r.height; y++) {
      const from = ((r.top + y) * width + r.left) * channels;
      cropped.set(this.data.subarray(from, from + r.width * channels), y * r.width * channels);
    }
    const size = this.size ?? { width: r.width, height: r.height };
    return resizeRgb(cropped, r.width, r.height, size.width, size.height, channels);
  }
}

export default function sharp(input: Uint8Array, options?: Partial<RawInput>): RawPipeline {
  if (!options?.raw) throw new Error('sharp in the browser bundle takes raw pixels only: decode images with the browser (createImageBitmap)');
  return new RawPipeline(input, options.raw);
}
