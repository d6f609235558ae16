// One reference photo per identity of the synthetic world (issue 8), the phase-1 training set until real faces exist:
// photo style (the paper's inputs are photos), with the identity's own background, accessory and framing jitter.
import { namedRng } from '../../random/index.ts';
import { DEFAULT_WORLD, identityIds, renderSample, sampleContext, sampleIdentity, sampleNuisance, type Split, toRgbBytes, type WorldConfig } from '../../world/index.ts';
import type { IdentityImage } from './pre-optimize.ts';

export function worldIdentityImages(split: Split, count: number, world: WorldConfig = DEFAULT_WORLD): IdentityImage[] {
  const ids = identityIds(world, split).slice(0, count);
  return ids.map((id) => {
    const rng = namedRng(world.seed, `phase1/reference/${id}`);
    const image = renderSample(sampleIdentity(world.seed, id), { ...sampleContext(rng), style: 'photo' }, sampleNuisance(rng), world.size);
    return { id: `world-${world.seed}-${id}`, image: { width: image.width, height: image.height, data: toRgbBytes(image) } };
  });
}

/** Refuses a validation set that shares an identity with the training set: the validation loss is on held-out faces. */
export function assertHeldOut(train: readonly IdentityImage[], validation: readonly IdentityImage[]): void {
  const trainIds = new Set(train.map((identity) => identity.id));
  const shared = validation.filter((identity) => trainIds.has(identity.id)).map((identity) => identity.id);
  if (shared.length > 0) throw new Error(`validation identities must be held out, but ${shared.slice(0, 5).join(', ')} are also training identities`);
}
