// An evaluator-free check of colour identity: render the same sample with each possible eye (or hair) colour, and
// classify a reconstruction by which of those renders its mean colour over the changing pixels is nearest to. This is
// the best possible colour classifier for the world (it knows the geometry), so its accuracy measures only what the
// VAE kept, not what an evaluator network can read (the world evaluator's eye_colour head is 97.5% accurate on renders).
import { EYE_COLOURS, HAIR_COLOURS, type Identity } from '../attributes.ts';
import { renderSample, type Sample } from '../dataset.ts';
import type { RgbImage } from '../render.ts';

/** A pixel belongs to the attribute when some repainting moves its colour by more than this (sum of |ΔRGB|). */
const CHANGE_THRESHOLD = 0.15;
/** Fewer changing pixels than this (eyes behind dark glasses, hair under a hat) give no reliable colour. */
const MIN_PIXELS = 2;

export interface ColourAttribute {
  readonly name: string;
  readonly classes: number;
  readonly label: (identity: Identity) => number;
  readonly with: (identity: Identity, value: number) => Identity;
}

export const EYE_COLOUR: ColourAttribute = { name: 'eye_colour', classes: EYE_COLOURS.length, label: (i) => i.eyeColour, with: (i, v) => ({ ...i, eyeColour: v }) };
export const HAIR_COLOUR: ColourAttribute = { name: 'hair_colour', classes: HAIR_COLOURS.length, label: (i) => i.hairColour, with: (i, v) => ({ ...i, hairColour: v }) };

function meanOver(image: RgbImage, pixels: readonly number[]): [number, number, number] {
  const m: [number, number, number] = [0, 0, 0];
  for (const i of pixels) for (let c = 0; c < 3; c++) m[c]! += image.data[i * 3 + c]! / pixels.length;
  return m;
}

/** The class whose render the reconstruction's colour over the attribute's pixels is nearest to; undefined if unseen. */
export function classifyColour(attribute: ColourAttribute, sample: Sample, reconstruction: RgbImage): number | undefined {
  const size = sample.image.width;
  const renders = Array.from({ length: attribute.classes }, (_, k) =>
    k === attribute.label(sample.identity) ? sample.image : renderSample(attribute.with(sample.identity, k), sample.context, sample.nuisance, size),
  );
  const pixels: number[] = [];
  for (let i = 0; i < size * size; i++) {
    const changes = renders.some((r) => Math.abs(r.data[i * 3]! - sample.image.data[i * 3]!) + Math.abs(r.data[i * 3 + 1]! - sample.image.data[i * 3 + 1]!) + Math.abs(r.data[i * 3 + 2]! - sample.image.data[i * 3 + 2]!) > CHANGE_THRESHOLD);
    if (changes) pixels.push(i);
  }
  if (pixels.length < MIN_PIXELS) return undefined;
  const target = meanOver(reconstruction, pixels);
  let best = 0;
  let bestDistance = Number.POSITIVE_INFINITY;
  renders.forEach((r, k) => {
    const m = meanOver(r, pixels);
    const d = (m[0] - target[0]) ** 2 + (m[1] - target[1]) ** 2 + (m[2] - target[2]) ** 2;
    if (d < bestDistance) [best, bestDistance] = [k, d];
  });
  return best;
}

/** Share of samples (where the attribute is visible) whose reconstruction is classified as the true colour. */
export function colourAccuracy(attribute: ColourAttribute, samples: readonly Sample[], reconstructions: readonly RgbImage[]): { accuracy: number; visible: number } {
  let visible = 0;
  let correct = 0;
  samples.forEach((s, i) => {
    const predicted = classifyColour(attribute, s, reconstructions[i]!);
    if (predicted === undefined) return;
    visible++;
    if (predicted === attribute.label(s.identity)) correct++;
  });
  return { accuracy: visible === 0 ? 0 : correct / visible, visible };
}
