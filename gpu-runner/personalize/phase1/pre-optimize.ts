// Phase 1 (a): DreamBooth-LiDB per training identity (one image, "a [V] face", LiDB from zero), one native weight file
// per identity. Resumable (finished identities are skipped; files appear atomically) and parallel across processes
// (each takes the identities of its shard).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { personalize } from '../api.ts';
import type { FaceBox, RgbPixels } from '../face/preprocess.ts';
import type { PersonalizationModel } from '../model.ts';
import { decodeNativeWeights, encodeNativeWeights } from '../weights/native-format.ts';
import type { PersonalizedWeights } from '../weights/personalized-weights.ts';

/** Paper §4: pre-optimized weights come from a few hundred DreamBooth-LiDB steps per identity. */
export const DEFAULT_PRE_OPTIMIZE_STEPS = 300;

export interface IdentityImage {
  /** File-name-safe identity id. */
  readonly id: string;
  readonly image: Uint8Array | RgbPixels;
  readonly box?: FaceBox;
}

export interface Shard {
  readonly index: number;
  readonly count: number;
}

export interface PreOptimizeOptions {
  readonly outDir: string;
  readonly steps?: number;
  readonly learningRate?: number;
  readonly seed?: number;
  readonly shard?: Shard;
  readonly onProgress?: (progress: { done: number; total: number; skipped: number; id: string; finalLoss?: number }) => void;
}

const SAFE_ID = /^[A-Za-z0-9_.-]+$/;

export function preOptimizedPath(outDir: string, id: string): string {
  if (!SAFE_ID.test(id) || id.startsWith('.')) throw new Error(`identity id "${id}" must be a safe file name ([A-Za-z0-9_.-])`);
  return join(outDir, `${id}.lidb.safetensors`);
}

/** Identities of one shard: every `count`-th starting at `index`, so shards are disjoint and balanced. */
export function shardOf<T>(items: readonly T[], shard: Shard = { index: 0, count: 1 }): T[] {
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new RangeError(`shard ${shard.index}/${shard.count} is invalid`);
  }
  return items.filter((_, i) => i % shard.count === shard.index);
}

export async function preOptimizeIdentities(model: PersonalizationModel, identities: readonly IdentityImage[], options: PreOptimizeOptions): Promise<{ written: string[]; skipped: string[] }> {
  mkdirSync(options.outDir, { recursive: true });
  const mine = shardOf(identities, options.shard);
  const written: string[] = [];
  const skipped: string[] = [];
  for (const identity of mine) {
    const path = preOptimizedPath(options.outDir, identity.id);
    if (existsSync(path)) {
      skipped.push(identity.id);
      options.onProgress?.({ done: written.length + skipped.length, total: mine.length, skipped: skipped.length, id: identity.id });
      continue;
    }
    const { weights, report } = await personalize(model, { image: identity.image, ...(identity.box ? { box: identity.box } : {}) }, {
      method: 'lidb-zero',
      steps: options.steps ?? DEFAULT_PRE_OPTIMIZE_STEPS,
      ...(options.learningRate !== undefined ? { learningRate: options.learningRate } : {}),
      seed: options.seed ?? 0,
    });
    // Write then rename: a killed process leaves no half-written file that a resume would take as finished.
    const partial = `${path}.partial-${process.pid}`;
    writeFileSync(partial, encodeNativeWeights(weights, 'F32'));
    renameSync(partial, path);
    written.push(identity.id);
    const losses = report?.losses ?? [];
    options.onProgress?.({ done: written.length + skipped.length, total: mine.length, skipped: skipped.length, id: identity.id, ...(losses.length ? { finalLoss: losses[losses.length - 1]! } : {}) });
  }
  return { written, skipped };
}

export function readPreOptimized(model: PersonalizationModel, outDir: string, id: string): PersonalizedWeights {
  return decodeNativeWeights(readFileSync(preOptimizedPath(outDir, id)), { unet: model.unet.plan, textEncoder: model.textEncoder.config });
}
