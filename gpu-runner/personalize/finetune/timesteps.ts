// Which diffusion timesteps a personalization's optimizer steps fit. DreamBooth draws each step's timestep uniformly
// from the whole schedule; over 1,200 steps that covers it evenly. A finetune of a few dozen steps from the
// hypernetwork's prediction is different: 25 independent uniform draws leave gaps and clumps, and the noisiest
// timesteps (where the image's layout, not the face, is decided) teach the prediction little about the person. On the
// world's VALIDATION faces (docs/hypernetwork.md) spreading the steps evenly over the lower 60% of the schedule gave
// the same identity as uniform draws at a higher learning rate with better prompt fidelity, and steadier from seed to
// seed.
import { z } from 'zod';
import { namedRng } from '../../random/index.ts';

export type TimestepSchedule =
  /** Each step draws its timestep independently and uniformly from [0, T) (DreamBooth; the from-zero baselines). */
  | { readonly kind: 'uniform' }
  /**
   * Step i fits t_i = ⌊maxFraction · T · frac(u + i / φ)⌋ with u drawn once from the seed: the golden-ratio sequence
   * spreads any number of steps evenly over [0, maxFraction · T), with no step count fixed in advance.
   */
  | { readonly kind: 'stratified'; readonly maxFraction: number };

export const UNIFORM_TIMESTEPS: TimestepSchedule = { kind: 'uniform' };

/** A schedule as settings carry it (the world benchmark's), with the bounds `checkTimestepSchedule` holds it to. */
export const timestepScheduleSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('uniform') }),
  z.object({ kind: z.literal('stratified'), maxFraction: z.number().gt(0).max(1) }),
]);

/** 1/φ: consecutive multiples modulo 1 leave the most even gaps of any rotation (the three-gap theorem). */
const INVERSE_GOLDEN_RATIO = (Math.sqrt(5) - 1) / 2;

export function checkTimestepSchedule(schedule: TimestepSchedule): void {
  if (schedule.kind === 'stratified' && !(schedule.maxFraction > 0 && schedule.maxFraction <= 1)) {
    throw new RangeError(`stratified timesteps: maxFraction must be in (0, 1], got ${schedule.maxFraction}`);
  }
}

/** The timestep of step `index` of `stream`, in [0, trainSteps), from its own named random streams. */
export function timestepOfStep(schedule: TimestepSchedule, trainSteps: number, seed: number, stream: string, index: number): number {
  if (schedule.kind === 'uniform') return namedRng(seed, `${stream}/timestep/${index}`).nextBelow(trainSteps);
  checkTimestepSchedule(schedule);
  const offset = namedRng(seed, `${stream}/timestep-offset`).nextUint32() / 2 ** 32;
  const position = (offset + index * INVERSE_GOLDEN_RATIO) % 1;
  return Math.min(trainSteps - 1, Math.floor(schedule.maxFraction * trainSteps * position));
}
