// Hair hue, for the VAE gate ("hue error < 15°", docs/world.md): which pixels are hair is found by rendering the same
// sample with the hair painted another colour (pixels that change are hair: scalp, eyebrows, beard), and the hue
// compared is that of the mean colour over those pixels, in the original and in its reconstruction.
import { HAIR_COLOURS, type Rgb } from '../attributes.ts';
import { renderSample, type Sample } from '../dataset.ts';
import type { RgbImage } from '../render.ts';

/** A pixel is hair when repainting the hair moves its colour by more than this (sum of |ΔRGB|, colours in [0, 1]). */
const HAIR_PIXEL_CHANGE = 0.15;
/** Hue is undefined for grey: mean hair colours less saturated (HSV S) than this are left out of the hue error. */
export const MIN_HUE_SATURATION = 0.2;
/** Too few hair pixels (bald, hat) give no reliable mean. */
const MIN_HAIR_PIXELS = 4;

function distance(a: Rgb, b: Rgb): number {
  return Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]);
}

/** The hair colour farthest from `index` (so every hair pixel changes visibly when repainted). */
function contrastingHair(index: number): number {
  let best = 0;
  HAIR_COLOURS.forEach((c, k) => {
    if (distance(c.value, HAIR_COLOURS[index]!.value) > distance(HAIR_COLOURS[best]!.value, HAIR_COLOURS[index]!.value)) best = k;
  });
  return best;
}

/** Indices of the hair pixels of a sample's render. */
export function hairMask(sample: Sample): number[] {
  const repainted = renderSample({ ...sample.identity, hairColour: contrastingHair(sample.identity.hairColour) }, sample.context, sample.nuisance, sample.image.width);
  const mask: number[] = [];
  for (let i = 0; i < sample.image.width * sample.image.height; i++) {
    let change = 0;
    for (let c = 0; c < 3; c++) change += Math.abs(repainted.data[i * 3 + c]! - sample.image.data[i * 3 + c]!);
    if (change > HAIR_PIXEL_CHANGE) mask.push(i);
  }
  return mask;
}

export function meanColour(image: RgbImage, pixels: readonly number[]): Rgb {
  const sum = [0, 0, 0];
  for (const i of pixels) for (let c = 0; c < 3; c++) sum[c]! += image.data[i * 3 + c]!;
  return [sum[0]! / pixels.length, sum[1]! / pixels.length, sum[2]! / pixels.length];
}

/** HSV hue in degrees [0, 360) and saturation in [0, 1]. */
export function hueSaturation([r, g, b]: Rgb): { hue: number; saturation: number } {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const chroma = max - min;
  const saturation = max === 0 ? 0 : chroma / max;
  if (chroma === 0) return { hue: 0, saturation };
  let hue: number;
  if (max === r) hue = ((g - b) / chroma) % 6;
  else if (max === g) hue = (b - r) / chroma + 2;
  else hue = (r - g) / chroma + 4;
  return { hue: (hue * 60 + 360) % 360, saturation };
}

export function hueDistance(a: number, b: number): number {
  const d = Math.abs(a - b) % 360;
  return d > 180 ? 360 - d : d;
}

/** Hue error (degrees) of the hair between a sample and its reconstruction; undefined when the hair has no hue. */
export function hairHueError(sample: Sample, reconstruction: RgbImage): number | undefined {
  const mask = hairMask(sample);
  if (mask.length < MIN_HAIR_PIXELS) return undefined;
  const original = hueSaturation(meanColour(sample.image, mask));
  if (original.saturation < MIN_HUE_SATURATION) return undefined;
  return hueDistance(original.hue, hueSaturation(meanColour(reconstruction, mask)).hue);
}
