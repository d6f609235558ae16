// The benchmark's prompts and reference images. Prompts name the subject only by the identifier token and ask for
// context the evaluator's context heads can check (background, accessory, style), so prompt fidelity is measurable.
import { namedRng } from '../../random/index.ts';
import { BACKGROUNDS, type Context } from '../attributes.ts';
import { captionWithIdentifier } from '../caption.ts';
import { renderSample, type WorldConfig } from '../dataset.ts';
import type { RgbImage } from '../render.ts';
import { sampleIdentity, sampleNuisance } from '../sample.ts';

const background = (name: string): number => {
  const index = BACKGROUNDS.findIndex((b) => b.name === name);
  if (index < 0) throw new Error(`unknown background "${name}"`);
  return index;
};

/**
 * A fixed, ordered list: every prefix of three covers each style and each accessory once, and no two prompts share a
 * background until the list wraps, so the quick mode (first three) still probes every context head.
 */
export const PROMPT_CONTEXTS: readonly Context[] = [
  { style: 'photo', background: background('blue'), accessory: 'hat' },
  { style: 'sketch', background: background('red'), accessory: 'none' },
  { style: 'pixel art', background: background('green'), accessory: 'glasses' },
  { style: 'photo', background: background('yellow'), accessory: 'glasses' },
  { style: 'sketch', background: background('purple'), accessory: 'hat' },
  { style: 'pixel art', background: background('orange'), accessory: 'none' },
  { style: 'photo', background: background('grey'), accessory: 'none' },
  { style: 'sketch', background: background('white'), accessory: 'glasses' },
  { style: 'pixel art', background: background('blue'), accessory: 'hat' },
];

/** The one reference photo per identity (the paper's single input image): a plain photo on a white background. */
export const REFERENCE_CONTEXT: Context = { style: 'photo', background: background('white'), accessory: 'none' };

export interface BenchmarkPrompt {
  readonly context: Context;
  readonly text: string;
}

export function benchmarkPrompts(count: number, identifier: string): BenchmarkPrompt[] {
  if (!Number.isInteger(count) || count < 1 || count > PROMPT_CONTEXTS.length) {
    throw new Error(`prompts must be an integer from 1 to ${PROMPT_CONTEXTS.length}, got ${count}`);
  }
  return PROMPT_CONTEXTS.slice(0, count).map((context) => ({ context, text: captionWithIdentifier(identifier, context) }));
}

/** The identity's reference photo at `size` px, with seeded nuisance (small shift, scale, lighting). */
export function referenceImage(world: WorldConfig, identityId: number, size: number, seed: number): RgbImage {
  const nuisance = sampleNuisance(namedRng(seed, `world-benchmark/reference/${identityId}`));
  return renderSample(sampleIdentity(world.seed, identityId), REFERENCE_CONTEXT, nuisance, size);
}

/** What the prompt asks for, drawn by the world itself: the ceiling a perfect model could reach. */
export function renderedTruth(world: WorldConfig, identityId: number, context: Context, size: number, seed: number, image: number): RgbImage {
  const nuisance = sampleNuisance(namedRng(seed, `world-benchmark/truth/${identityId}/${image}`));
  return renderSample(sampleIdentity(world.seed, identityId), context, nuisance, size);
}
