// Procedural face renderer: signed-distance shapes painted back to front, anti-aliased by supersampling.
// Pure TypeScript, no native dependencies, deterministic for a given (identity, context, nuisance, size).
import {
  BACKGROUNDS,
  EYE_COLOURS,
  HAIR_COLOURS,
  SKIN_TONES,
  type Context,
  type Identity,
  type Nuisance,
  type Rgb,
} from './attributes.ts';

/** An image as float RGB in [0, 1], row-major HWC. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}

export interface RenderOptions {
  /** Samples per pixel along each axis; 4 → 16 samples, enough for smooth edges at 32–64 px. */
  readonly supersampling?: number;
}

const DEFAULT_SUPERSAMPLING = 4;
const HAT_COLOUR: Rgb = [0.12, 0.12, 0.16];
const GLASSES_COLOUR: Rgb = [0.05, 0.05, 0.05];
const EYE_WHITE: Rgb = [0.97, 0.97, 0.97];
const LIPS: Rgb = [0.7, 0.25, 0.25];
const MOLE: Rgb = [0.2, 0.1, 0.05];

// Eye geometry in face space. At 32 px one face-space unit is about 12.8 px (the face spans 80% of the frame), so the
// iris (radius 0.14) is about 3.6 px across: wide enough for a ×4 VAE to keep its colour (radius 0.088 was not).
export const EYE_CENTRES_X = [-0.21, 0.21] as const;
export const EYE_Y = -0.04;
const EYE_RX = 0.17;
const EYE_RY = 0.15;
export const IRIS_RADIUS = 0.14;
// Marks (mole, freckles) sit on the cheeks between the glasses' rings and the top of a beard, so neither hides them.
const BEARD_TOP = 0.26;

function ellipse(x: number, y: number, cx: number, cy: number, rx: number, ry: number): boolean {
  const dx = (x - cx) / rx;
  const dy = (y - cy) / ry;
  return dx * dx + dy * dy <= 1;
}

function superellipse(x: number, y: number, cx: number, cy: number, rx: number, ry: number, p: number): boolean {
  return Math.abs((x - cx) / rx) ** p + Math.abs((y - cy) / ry) ** p <= 1;
}

function rect(x: number, y: number, x0: number, y0: number, x1: number, y1: number): boolean {
  return x >= x0 && x <= x1 && y >= y0 && y <= y1;
}

function scaleRgb(c: Rgb, k: number): Rgb {
  return [c[0] * k, c[1] * k, c[2] * k];
}

function faceContains(identity: Identity, x: number, y: number): boolean {
  switch (identity.faceShape) {
    case 'round':
      return ellipse(x, y, 0, 0.05, 0.5, 0.55);
    case 'oval':
      return ellipse(x, y, 0, 0.05, 0.42, 0.62);
    case 'square':
      return superellipse(x, y, 0, 0.05, 0.48, 0.56, 4);
  }
}

/** Colour of the scene at face-space point (x, y) ∈ [-1, 1]², y pointing down. */
function shade(identity: Identity, context: Context, x: number, y: number): Rgb {
  const skin = SKIN_TONES[identity.skin]!.value;
  const hair = HAIR_COLOURS[identity.hairColour]!.value;
  const eye = EYE_COLOURS[identity.eyeColour]!.value;
  const background = BACKGROUNDS[context.background]!.value;
  const hat = context.accessory === 'hat';

  // Front to back: the first layer that covers the point wins.
  if (hat && (rect(x, y, -0.42, -0.98, 0.42, -0.5) || rect(x, y, -0.68, -0.52, 0.68, -0.4))) return HAT_COLOUR;

  if (context.accessory === 'glasses') {
    // Rings around the eyes (their inner radius clears the eye ellipse); adjacent rings meet at the bridge.
    for (const cx of EYE_CENTRES_X) {
      const d = Math.hypot(x - cx, y - EYE_Y);
      if (d >= EYE_RX + 0.015 && d <= EYE_RX + 0.05) return GLASSES_COLOUR;
    }
  }

  const face = faceContains(identity, x, y);
  if (face) {
    // Eyes: white and a large iris, no pupil: the identity colour must survive the VAE, and under the sketch style a
    // pupil's edges would ink over the whole 3–4 px iris.
    for (const cx of EYE_CENTRES_X) {
      if (ellipse(x, y, cx, EYE_Y, EYE_RX, EYE_RY)) {
        const d = Math.hypot(x - cx, y - EYE_Y);
        if (d <= IRIS_RADIUS) return eye;
        return EYE_WHITE;
      }
      // Brows just above the eye, in the hair colour.
      if (identity.hairStyle !== 'bald' && rect(x, y, cx - 0.13, EYE_Y - EYE_RY - 0.065, cx + 0.13, EYE_Y - EYE_RY - 0.025)) return hair;
    }
    if (identity.beard === 'full' && y > BEARD_TOP && !ellipse(x, y, 0, 0.33, 0.16, 0.06)) return hair;
    if (ellipse(x, y, 0, 0.33, 0.16, 0.05)) return LIPS;
    if (identity.mark === 'mole' && Math.hypot(x - 0.31, y - 0.2) <= 0.06) return MOLE;
    if (identity.mark === 'freckles') {
      // A band of large freckles across both cheeks, between the eyes and a beard: big enough to survive 32 px and a ×4 VAE.
      for (const [fx, fy] of [[-0.36, 0.16], [-0.26, 0.22], [-0.35, 0.25], [0.36, 0.16], [0.26, 0.22], [0.35, 0.25]] as const) {
        if (Math.hypot(x - fx, y - fy) <= 0.04) return scaleRgb(skin, 0.5);
      }
    }
    // Hair over the forehead.
    if (!hat && y < -0.25 && hairOnTop(identity, x, y)) return hair;
    return skin;
  }

  if (!hat && hairOnTop(identity, x, y)) return hair;
  if (identity.hairStyle === 'long' && rect(x, y, -0.58, -0.3, 0.58, 0.7) && ellipse(x, y, 0, 0.05, 0.6, 0.8)) return hair;
  if (!hat && identity.hairStyle === 'bun' && ellipse(x, y, 0, -0.72, 0.2, 0.16)) return hair;
  if (rect(x, y, -0.17, 0.5, 0.17, 1.0)) return scaleRgb(skin, 0.85); // neck
  if (ellipse(x, y, 0, 1.25, 0.75, 0.45)) return scaleRgb(skin, 0.85); // shoulders
  return background;
}

function hairOnTop(identity: Identity, x: number, y: number): boolean {
  switch (identity.hairStyle) {
    case 'bald':
      return false;
    case 'mohawk':
      return rect(x, y, -0.09, -0.82, 0.09, -0.2) && y < 0;
    case 'short':
    case 'long':
    case 'bun':
      return y < -0.2 && ellipse(x, y, 0, -0.05, 0.56, 0.7);
  }
}

/** Renders one image of `identity` in `context`, in colour, before any style is applied. */
export function renderPhoto(
  identity: Identity,
  context: Context,
  nuisance: Nuisance,
  size: number,
  options: RenderOptions = {},
): RgbImage {
  const ss = options.supersampling ?? DEFAULT_SUPERSAMPLING;
  const data = new Float32Array(size * size * 3);
  const inv = 1 / (ss * ss);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          // Image space [-1, 1] → face space, undoing the nuisance shift and scale.
          const ix = ((px + (sx + 0.5) / ss) / size) * 2 - 1;
          const iy = ((py + (sy + 0.5) / ss) / size) * 2 - 1;
          const x = (ix - nuisance.shiftX * 2) / (nuisance.scale * 0.8);
          const y = (iy - nuisance.shiftY * 2) / (nuisance.scale * 0.8);
          const c = shade(identity, context, x, y);
          r += c[0];
          g += c[1];
          b += c[2];
        }
      }
      const o = (py * size + px) * 3;
      data[o] = Math.min(1, r * inv * nuisance.light);
      data[o + 1] = Math.min(1, g * inv * nuisance.light);
      data[o + 2] = Math.min(1, b * inv * nuisance.light);
    }
  }
  return { width: size, height: size, data };
}
