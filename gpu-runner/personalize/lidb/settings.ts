import { z } from 'zod';

/** LiDB dimensions from the paper (HyperDreamBooth §3.1 "Lightweight DreamBooth"): a = 100, b = 50, r = 1. */
export const DEFAULT_AUX_DOWN_RANK = 100;
export const DEFAULT_AUX_UP_RANK = 50;
export const DEFAULT_TRAIN_RANK = 1;
/** Version of the aux-basis algorithm in LIDB.md; stored in weight files so a reader knows how to rebuild the bases. */
export const LIDB_ALGORITHM_VERSION = 'lidb-aux-v1';

export const lidbSettingsSchema = z.object({
  /** a: rows of A_aux (the down-projection's frozen basis). */
  a: z.number().int().positive().default(DEFAULT_AUX_DOWN_RANK),
  /** b: columns of B_aux (the up-projection's frozen basis). */
  b: z.number().int().positive().default(DEFAULT_AUX_UP_RANK),
  /** r: the trainable rank between them. */
  r: z.number().int().positive().default(DEFAULT_TRAIN_RANK),
  /** Seed of the aux bases (PCG32 initstate): a uint32, stored in the weight file. */
  auxSeed: z.number().int().min(0).max(0xffff_ffff).default(0),
});

export type LidbSettings = z.output<typeof lidbSettingsSchema>;

export function lidbSettings(input: z.input<typeof lidbSettingsSchema> = {}): LidbSettings {
  return lidbSettingsSchema.parse(input);
}
