// The attribute vocabulary of the synthetic face world (docs/world.md). Identity attributes are fixed per identity;
// context attributes are what a prompt controls; nuisance is small per-image variation nobody names.
// Colours are chosen far apart in hue/lightness so they survive a ×4 VAE at 32–64 px (the VAE gate: hue error < 15°).

export type Rgb = readonly [number, number, number];

interface Named<T> {
  readonly name: string;
  readonly value: T;
}

export const SKIN_TONES: readonly Named<Rgb>[] = [
  { name: 'pale', value: [0.96, 0.85, 0.76] },
  { name: 'light', value: [0.91, 0.74, 0.6] },
  { name: 'tan', value: [0.78, 0.57, 0.4] },
  { name: 'brown', value: [0.55, 0.37, 0.24] },
  { name: 'dark', value: [0.33, 0.21, 0.14] },
];

export const HAIR_COLOURS: readonly Named<Rgb>[] = [
  { name: 'black', value: [0.08, 0.07, 0.07] },
  { name: 'blond', value: [0.93, 0.8, 0.35] },
  { name: 'red', value: [0.75, 0.22, 0.08] },
  { name: 'white', value: [0.92, 0.92, 0.9] },
  { name: 'blue', value: [0.15, 0.35, 0.9] },
  { name: 'pink', value: [0.95, 0.4, 0.7] },
  { name: 'green', value: [0.2, 0.7, 0.25] },
];

export const HAIR_STYLES = ['short', 'long', 'bald', 'mohawk', 'bun'] as const;
export type HairStyle = (typeof HAIR_STYLES)[number];

export const EYE_COLOURS: readonly Named<Rgb>[] = [
  { name: 'brown', value: [0.4, 0.22, 0.08] },
  { name: 'blue', value: [0.1, 0.45, 0.95] },
  { name: 'green', value: [0.1, 0.7, 0.3] },
  { name: 'grey', value: [0.55, 0.58, 0.6] },
];

export const FACE_SHAPES = ['round', 'oval', 'square'] as const;
export type FaceShape = (typeof FACE_SHAPES)[number];

export const BEARDS = ['none', 'full'] as const;
export type Beard = (typeof BEARDS)[number];

export const MARKS = ['none', 'freckles', 'mole'] as const;
export type Mark = (typeof MARKS)[number];

export const BACKGROUNDS: readonly Named<Rgb>[] = [
  { name: 'white', value: [0.95, 0.95, 0.95] },
  { name: 'red', value: [0.85, 0.15, 0.15] },
  { name: 'green', value: [0.2, 0.65, 0.3] },
  { name: 'blue', value: [0.2, 0.35, 0.85] },
  { name: 'yellow', value: [0.95, 0.85, 0.2] },
  { name: 'purple', value: [0.55, 0.25, 0.7] },
  { name: 'grey', value: [0.5, 0.5, 0.5] },
  { name: 'orange', value: [0.95, 0.55, 0.15] },
];

export const ACCESSORIES = ['none', 'hat', 'glasses'] as const;
export type Accessory = (typeof ACCESSORIES)[number];

export const STYLES = ['photo', 'sketch', 'pixel art'] as const;
export type Style = (typeof STYLES)[number];

export interface Identity {
  readonly id: number;
  readonly skin: number; // index into SKIN_TONES
  readonly hairColour: number; // index into HAIR_COLOURS
  readonly hairStyle: HairStyle;
  readonly eyeColour: number; // index into EYE_COLOURS
  readonly faceShape: FaceShape;
  readonly beard: Beard;
  readonly mark: Mark;
}

export interface Context {
  readonly background: number; // index into BACKGROUNDS
  readonly accessory: Accessory;
  readonly style: Style;
}

/** Small per-image variation that no caption names: the renderer's robustness test. */
export interface Nuisance {
  readonly shiftX: number; // fraction of the image size
  readonly shiftY: number;
  readonly scale: number;
  readonly light: number; // multiplicative brightness
}

export const NO_NUISANCE: Nuisance = { shiftX: 0, shiftY: 0, scale: 1, light: 1 };
