// Seeded sampling of identities, contexts and nuisance. An identity is a pure function of (world seed, identity id),
// so data sets are reproducible and identities can be split by id without sampling them all.
import { namedRng, uniform53, type Pcg32 } from '../random/index.ts';
import {
  ACCESSORIES,
  BACKGROUNDS,
  BEARDS,
  EYE_COLOURS,
  FACE_SHAPES,
  HAIR_COLOURS,
  HAIR_STYLES,
  MARKS,
  SKIN_TONES,
  STYLES,
  type Context,
  type Identity,
  type Nuisance,
} from './attributes.ts';

/** Nuisance ranges: small enough that identity and context stay readable at 32 px. */
export const NUISANCE_LIMITS = { shift: 0.04, scale: 0.06, light: 0.1 } as const;

function pickIndex(rng: Pcg32, n: number): number {
  return Math.floor(uniform53(rng) * n);
}

function pick<T>(rng: Pcg32, values: readonly T[]): T {
  return values[pickIndex(rng, values.length)]!;
}

function symmetric(rng: Pcg32, limit: number): number {
  return (uniform53(rng) * 2 - 1) * limit;
}

export function sampleIdentity(worldSeed: number, id: number): Identity {
  const rng = namedRng(worldSeed, `world/identity/${id}`);
  return {
    id,
    skin: pickIndex(rng, SKIN_TONES.length),
    hairColour: pickIndex(rng, HAIR_COLOURS.length),
    hairStyle: pick(rng, HAIR_STYLES),
    eyeColour: pickIndex(rng, EYE_COLOURS.length),
    faceShape: pick(rng, FACE_SHAPES),
    beard: pick(rng, BEARDS),
    mark: pick(rng, MARKS),
  };
}

export function sampleContext(rng: Pcg32): Context {
  return { background: pickIndex(rng, BACKGROUNDS.length), accessory: pick(rng, ACCESSORIES), style: pick(rng, STYLES) };
}

export function sampleNuisance(rng: Pcg32): Nuisance {
  return {
    shiftX: symmetric(rng, NUISANCE_LIMITS.shift),
    shiftY: symmetric(rng, NUISANCE_LIMITS.shift),
    scale: 1 + symmetric(rng, NUISANCE_LIMITS.scale),
    light: 1 + symmetric(rng, NUISANCE_LIMITS.light),
  };
}
