// Reproducible data sets of the synthetic world, split by identity: an identity in one split never appears in another.
import { namedRng, uniform53 } from '../random/index.ts';
import type { Context, Identity, Nuisance } from './attributes.ts';
import { captionWithDescription, captionWithIdentifier, DEFAULT_IDENTIFIER } from './caption.ts';
import { renderPhoto, type RgbImage } from './render.ts';
import { sampleContext, sampleIdentity, sampleNuisance } from './sample.ts';
import { applyStyle } from './styles.ts';

export type Split = 'train' | 'validation' | 'test';

export interface WorldConfig {
  readonly seed: number;
  readonly size: number;
  readonly identities: Readonly<Record<Split, number>>;
  /** Share of captions that name the identity by the identifier token instead of describing it. */
  readonly identifierCaptionShare: number;
  readonly identifier: string;
}

export const DEFAULT_WORLD: WorldConfig = {
  seed: 7,
  size: 32,
  identities: { train: 400, validation: 50, test: 50 },
  identifierCaptionShare: 0.2,
  identifier: DEFAULT_IDENTIFIER,
};

export interface Sample {
  readonly identity: Identity;
  readonly context: Context;
  readonly nuisance: Nuisance;
  readonly caption: string;
  readonly image: RgbImage;
}

/** Identity ids of a split: train first, then validation, then test, contiguous ranges. */
export function identityIds(config: WorldConfig, split: Split): number[] {
  const { train, validation, test } = config.identities;
  const start = split === 'train' ? 0 : split === 'validation' ? train : train + validation;
  const count = split === 'train' ? train : split === 'validation' ? validation : test;
  return Array.from({ length: count }, (_, i) => start + i);
}

export function renderSample(identity: Identity, context: Context, nuisance: Nuisance, size: number): RgbImage {
  return applyStyle(renderPhoto(identity, context, nuisance, size), context.style);
}

/** The `index`-th sample of a split: a pure function of (config, split, index). */
export function sampleAt(config: WorldConfig, split: Split, index: number): Sample {
  const ids = identityIds(config, split);
  if (ids.length === 0) throw new Error(`world split "${split}" has no identities`);
  const rng = namedRng(config.seed, `world/${split}/sample/${index}`);
  const identity = sampleIdentity(config.seed, ids[Math.floor(uniform53(rng) * ids.length)]!);
  const context = sampleContext(rng);
  const nuisance = sampleNuisance(rng);
  const caption =
    uniform53(rng) < config.identifierCaptionShare
      ? captionWithIdentifier(config.identifier, context)
      : captionWithDescription(identity, context);
  return { identity, context, nuisance, caption, image: renderSample(identity, context, nuisance, config.size) };
}
