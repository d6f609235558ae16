// What every training run of the world's models shares: its run folder's file names and the AdamW schedule settings
// (cosine decay to minLr after a linear warm-up, decoupled weight decay, gradient clipping; docs/world.md).
import { z } from 'zod';

export const LATEST_CHECKPOINT = 'latest.safetensors';
export const PROGRESS_FILE = 'progress.jsonl';

export const adamWRunSchema = z.object({
  steps: z.number().int().positive(),
  batch: z.number().int().positive(),
  lr: z.number().positive(),
  minLr: z.number().nonnegative(),
  warmup: z.number().int().nonnegative(),
  weightDecay: z.number().nonnegative(),
  maxGradNorm: z.number().positive(),
});
