// One reference photo per identity of the synthetic world (docs/world.md), the phase-1 training set until real faces exist:
// photo style (the paper's inputs are photos), with the identity's own background, accessory and framing jitter.
import { namedRng } from '../random/index.ts';
import {
  BEARDS,
  captionWithDescription,
  captionWithIdentifier,
  type Context,
  DEFAULT_WORLD,
  EYE_COLOURS,
  FACE_SHAPES,
  HAIR_COLOURS,
  HAIR_STYLES,
  type Identity,
  identityIds,
  MARKS,
  renderSample,
  sampleContext,
  sampleIdentity,
  sampleNuisance,
  SKIN_TONES,
  type Split,
  toRgbBytes,
  type WorldConfig,
} from './index.ts';
import { PROMPT_CONTEXTS } from './benchmark/prompts.ts';
import type { RgbPixels } from '../personalize/face/preprocess.ts';
import type { IdentityImage } from '../personalize/phase1/pre-optimize.ts';

export function worldIdentityImages(split: Split, count: number, world: WorldConfig = DEFAULT_WORLD): IdentityImage[] {
  const ids = identityIds(world, split).slice(0, count);
  return ids.map((id) => {
    const rng = namedRng(world.seed, `phase1/reference/${id}`);
    const image = renderSample(sampleIdentity(world.seed, id), { ...sampleContext(rng), style: 'photo' }, sampleNuisance(rng), world.size);
    return { id: `world-${world.seed}-${id}`, image: { width: image.width, height: image.height, data: toRgbBytes(image) } };
  });
}

/** The world's identity number from an id written by `worldIdentityImages` (`world-<seed>-<n>`). */
export function worldIdentityNumber(id: string): number {
  const match = /^world-\d+-(\d+)$/.exec(id);
  if (!match) throw new Error(`not a world identity id: "${id}"`);
  return Number(match[1]);
}

/** Refuses a validation set that shares an identity with the training set: the validation loss is on held-out faces. */
export function assertHeldOut(train: readonly IdentityImage[], validation: readonly IdentityImage[]): void {
  const trainIds = new Set(train.map((identity) => identity.id));
  const shared = validation.filter((identity) => trainIds.has(identity.id)).map((identity) => identity.id);
  if (shared.length > 0) throw new Error(`validation identities must be held out, but ${shared.slice(0, 5).join(', ')} are also training identities`);
}

/** The identity attribute groups, in label order: the classes the attribute probe predicts per face. */
export const WORLD_ATTRIBUTE_GROUPS: readonly number[] = [SKIN_TONES.length, HAIR_COLOURS.length, HAIR_STYLES.length, EYE_COLOURS.length, FACE_SHAPES.length, BEARDS.length, MARKS.length];

/** One-hot identity labels, the groups of `WORLD_ATTRIBUTE_GROUPS` concatenated. Context is not part of them. */
export function worldAttributeLabels(identity: Identity): Float32Array {
  const indices = [identity.skin, identity.hairColour, HAIR_STYLES.indexOf(identity.hairStyle), identity.eyeColour, FACE_SHAPES.indexOf(identity.faceShape), BEARDS.indexOf(identity.beard), MARKS.indexOf(identity.mark)];
  const labels = new Float32Array(WORLD_ATTRIBUTE_GROUPS.reduce((n, c) => n + c, 0));
  let offset = 0;
  indices.forEach((index, k) => {
    labels[offset + index] = 1;
    offset += WORLD_ATTRIBUTE_GROUPS[k]!;
  });
  return labels;
}

/**
 * `extra`: identities numbered after every split of the world: drawn from the same distribution, in no split, so
 * never a validation or test face. Renders are free, so phase 1 can see many more faces than the base model's TRAIN
 * split holds.
 */
export type Phase1Split = Split | 'extra';

export function phase1IdentityIds(world: WorldConfig, split: Phase1Split, count: number): number[] {
  if (split !== 'extra') return identityIds(world, split).slice(0, count);
  const first = world.identities.train + world.identities.validation + world.identities.test;
  return Array.from({ length: count }, (_, i) => first + i);
}

export interface WorldPhase1Identity {
  readonly id: string;
  /** Photos the encoder sees (photo style, any background and accessory, framing jitter). */
  readonly inputs: readonly RgbPixels[];
  /** Other renders of the same person, each captioned with its context and the identifier, and described in words. */
  readonly views: readonly { image: RgbPixels; caption: string; description: string }[];
  readonly labels: Float32Array;
}

const sameContext = (a: Context, b: Context) => a.style === b.style && a.background === b.background && a.accessory === b.accessory;

/**
 * Phase-1 data for the world's identities: several input photos and several captioned views per identity. View
 * contexts never equal one of the benchmark's prompts (`PROMPT_CONTEXTS`), so the benchmark asks for contexts the
 * hypernetwork was not trained to draw with these faces.
 */
export function worldPhase1Identities(
  split: Phase1Split,
  count: number,
  options: { inputs: number; views: number; identifier: string },
  world: WorldConfig = DEFAULT_WORLD,
): WorldPhase1Identity[] {
  const ids = phase1IdentityIds(world, split, count);
  return ids.map((id) => {
    const identity = sampleIdentity(world.seed, id);
    const rgb = (image: ReturnType<typeof renderSample>) => ({ width: image.width, height: image.height, data: toRgbBytes(image) });
    const inputs = Array.from({ length: options.inputs }, (_, k) => {
      const rng = namedRng(world.seed, `phase1/input/${id}/${k}`);
      return rgb(renderSample(identity, { ...sampleContext(rng), style: 'photo' }, sampleNuisance(rng), world.size));
    });
    const views = Array.from({ length: options.views }, (_, k) => {
      const rng = namedRng(world.seed, `phase1/view/${id}/${k}`);
      let context = sampleContext(rng);
      while (PROMPT_CONTEXTS.some((held) => sameContext(held, context))) context = sampleContext(rng);
      return { image: rgb(renderSample(identity, context, sampleNuisance(rng), world.size)), caption: captionWithIdentifier(options.identifier, context), description: captionWithDescription(identity, context) };
    });
    return { id: `world-${world.seed}-${id}`, inputs, views, labels: worldAttributeLabels(identity) };
  });
}
