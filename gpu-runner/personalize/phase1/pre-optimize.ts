// Phase 1 (a): DreamBooth-LiDB per training identity (one image, "a [V] face", LiDB from zero), one native weight file
// per identity. Resumable (finished identities are skipped; files appear atomically) and parallel across processes
// (each takes the identities of its shard).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { personalize } from '../api.ts';
import type { FaceBox, RgbPixels } from '../face/preprocess.ts';
import type { PersonalizationModel } from '../model.ts';
import { decodeNativeWeights, encodeNativeWeights } from '../weights/native-format.ts';
import type { PersonalizedWeights } from '../weights/personalized-weights.ts';

/** Paper §4: pre-optimized weights come from a few hundred DreamBooth-LiDB steps per identity. */
export const DEFAULT_PRE_OPTIMIZE_STEPS = 300;
/**
 * The world's feasibility runs (docs/world.md, "Training settings"): LiDB from zero on one image captured coarse
 * identity in ≈ 300 steps at lr 1.5e-2.
 */
export const DEFAULT_PRE_OPTIMIZE_LEARNING_RATE = 1.5e-2;

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
  /** The identifier in "a [V] face" (the personalization library's default when absent). */
  readonly identifier?: string;
  /** Fixed (timestep, noise) draws on which each identity's diffusion loss is measured before and after (0: none). */
  readonly evaluationSamples?: number;
  readonly shard?: Shard;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PreOptimizeProgress) => void;
}

export interface PreOptimizeProgress {
  readonly done: number;
  readonly total: number;
  readonly skipped: number;
  readonly id: string;
  readonly finalLoss?: number;
  /** The record of an identity optimized just now (absent for a skipped one). */
  readonly record?: PreOptimizedRecord;
}

/** What one identity's optimization did, written beside its weights as `<id>.record.json` (collected by the manifest). */
export interface PreOptimizedRecord {
  readonly id: string;
  readonly file: string;
  readonly steps: number;
  /** Mean diffusion loss on the fixed evaluation draws: before (LiDB = 0, the base model) and after. */
  readonly lossBefore?: number;
  readonly lossAfter?: number;
  readonly firstLoss?: number;
  readonly lastLoss?: number;
  readonly seconds: number;
}

export const RECORD_SUFFIX = '.record.json';

const SAFE_ID = /^[A-Za-z0-9_.-]+$/;

export function preOptimizedPath(outDir: string, id: string): string {
  if (!SAFE_ID.test(id) || id.startsWith('.')) throw new Error(`identity id "${id}" must be a safe file name ([A-Za-z0-9_.-])`);
  return join(outDir, `${id}.lidb.safetensors`);
}

export const preOptimizedRecordPath = (outDir: string, id: string) => preOptimizedPath(outDir, id).replace(/\.lidb\.safetensors$/, RECORD_SUFFIX);

/** Write then rename: a killed process leaves no half-written file that a resume would take as finished. */
function writeAtomic(path: string, bytes: Uint8Array | string): void {
  const partial = `${path}.partial-${process.pid}`;
  writeFileSync(partial, bytes);
  renameSync(partial, path);
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
    if (options.signal?.aborted) break;
    const started = performance.now();
    const steps = options.steps ?? DEFAULT_PRE_OPTIMIZE_STEPS;
    const { weights, report } = await personalize(model, { image: identity.image, ...(identity.box ? { box: identity.box } : {}) }, {
      method: 'lidb-zero',
      steps,
      learningRate: options.learningRate ?? DEFAULT_PRE_OPTIMIZE_LEARNING_RATE,
      seed: options.seed ?? 0,
      ...(options.identifier !== undefined ? { identifier: options.identifier } : {}),
      ...(options.evaluationSamples !== undefined ? { evaluationSamples: options.evaluationSamples } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const losses = report?.losses ?? [];
    const record: PreOptimizedRecord = {
      id: identity.id,
      file: basename(path),
      steps,
      ...(report?.evaluationBefore !== undefined ? { lossBefore: report.evaluationBefore } : {}),
      ...(report?.evaluationAfter !== undefined ? { lossAfter: report.evaluationAfter } : {}),
      ...(losses.length ? { firstLoss: losses[0]!, lastLoss: losses[losses.length - 1]! } : {}),
      seconds: (performance.now() - started) / 1000,
    };
    // The record first, the weights last: the weight file marks the identity finished.
    writeAtomic(preOptimizedRecordPath(options.outDir, identity.id), `${JSON.stringify(record)}\n`);
    writeAtomic(path, encodeNativeWeights(weights, 'F32'));
    written.push(identity.id);
    options.onProgress?.({ done: written.length + skipped.length, total: mine.length, skipped: skipped.length, id: identity.id, ...(losses.length ? { finalLoss: losses[losses.length - 1]! } : {}), record });
  }
  return { written, skipped };
}

export function readPreOptimized(model: PersonalizationModel, outDir: string, id: string): PersonalizedWeights {
  return decodeNativeWeights(readFileSync(preOptimizedPath(outDir, id)), { unet: model.unet.plan, textEncoder: model.textEncoder.config });
}
