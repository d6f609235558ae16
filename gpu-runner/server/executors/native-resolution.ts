// Packs that draw one size well (the world pack: 32 px renders, below the API's 64 px minimum) are sampled at their own
// scale and the images enlarged to the requested size, instead of asking a 32 px model for pictures it never saw.
import { InvalidInputError, type RgbImage } from '../jobs/executor.ts';
import type { LoadedPack } from '../../pack/model-pack.ts';

/**
 * The size the sampler draws for a requested size. A pack with a native resolution draws the request divided by
 * factor = smaller side / native, and the image is enlarged by that factor; other packs draw the requested size.
 */
export function drawnSize(pack: Pick<LoadedPack, 'nativeResolution' | 'id'>, width: number, height: number): { width: number; height: number; factor: number } {
  const native = pack.nativeResolution;
  if (!native) return { width, height, factor: 1 };
  const factor = Math.min(width, height) / native;
  if (!Number.isInteger(factor) || factor < 1 || width % factor !== 0 || height % factor !== 0) {
    throw new InvalidInputError(
      `the model pack ${pack.id} draws ${native} px images: the smaller side must be a multiple of ${native} that divides the larger (e.g. ${native * 2} × ${native * 2}), got ${width} × ${height}`,
    );
  }
  return { width: width / factor, height: height / factor, factor };
}

/** Nearest-neighbour enlargement by an integer factor: every drawn pixel becomes a factor × factor block. */
export function enlarge(image: RgbImage, factor: number): RgbImage {
  if (factor === 1) return image;
  const width = image.width * factor;
  const height = image.height * factor;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sourceRow = Math.floor(y / factor) * image.width;
    for (let x = 0; x < width; x++) {
      const from = (sourceRow + Math.floor(x / factor)) * 3;
      const to = (y * width + x) * 3;
      data[to] = image.data[from]!;
      data[to + 1] = image.data[from + 1]!;
      data[to + 2] = image.data[from + 2]!;
    }
  }
  return { width, height, channels: 3, data };
}
