// A pre-optimized folder's `run.json` (the base model and settings its files were made with; a resume or another shard
// with different settings is refused, since mixing them would silently corrupt the data set) and `manifest.json`
// (every finished identity's record, plus means), rebuilt from the per-identity records by any process.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PersonalizationModel } from '../model.ts';
import { type PreOptimizedRecord, RECORD_SUFFIX } from './pre-optimize.ts';

export const RUN_FILE = 'run.json';
export const MANIFEST_FILE = 'manifest.json';
export const PRE_OPTIMIZED_FORMAT = 'hdb.phase1.pre-optimized';

function writeJsonAtomic(path: string, value: unknown): void {
  const partial = `${path}.partial-${process.pid}`;
  writeFileSync(partial, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(partial, path);
}

/** What makes two runs' files interchangeable: the base, the LiDB layout and the optimization settings. */
export function preOptimizeRun(model: PersonalizationModel, settings: Record<string, unknown>): Record<string, unknown> {
  return { format: PRE_OPTIMIZED_FORMAT, baseModel: { id: model.id, sha256: model.sha256 }, lidb: model.lidb, layers: model.layers.length, method: 'lidb-zero', settings };
}

function differences(saved: unknown, wanted: unknown, path = ''): string[] {
  if (typeof saved === 'object' && saved !== null && typeof wanted === 'object' && wanted !== null) {
    const keys = new Set([...Object.keys(saved), ...Object.keys(wanted)]);
    return [...keys].flatMap((key) => differences((saved as Record<string, unknown>)[key], (wanted as Record<string, unknown>)[key], path ? `${path}.${key}` : key));
  }
  return JSON.stringify(saved) === JSON.stringify(wanted) ? [] : [`${path}: ${JSON.stringify(saved)} before, ${JSON.stringify(wanted)} now`];
}

/**
 * Records `run` at `path`, or checks that it equals the one already there (`fresh`: replaces it, for a run that starts
 * over). `what` names the thing the settings belong to, for the error.
 */
export function claimRunFile(path: string, run: Record<string, unknown>, what: string, fresh = false): void {
  if (fresh || !existsSync(path)) return writeJsonAtomic(path, run);
  const diff = differences(JSON.parse(readFileSync(path, 'utf8')), JSON.parse(JSON.stringify(run)));
  if (diff.length > 0) throw new Error(`${what} was made with other settings (start another, or resume with the same settings):\n  ${diff.join('\n  ')}`);
}

/** Records `run` in `outDir`, or checks that it equals the one already there. */
export function claimRunFolder(outDir: string, run: Record<string, unknown>): void {
  mkdirSync(outDir, { recursive: true });
  claimRunFile(join(outDir, RUN_FILE), run, `the pre-optimized weights in ${outDir}`);
}

export interface PreOptimizedManifest {
  readonly format: typeof PRE_OPTIMIZED_FORMAT;
  readonly run?: Record<string, unknown>;
  readonly identities: PreOptimizedRecord[];
  readonly summary: { count: number; meanLossBefore?: number; meanLossAfter?: number; improved?: number; meanSeconds?: number };
}

const mean = (values: readonly number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined);

/** Collects the records of every finished identity (weights present) into `manifest.json`. */
export function writeManifest(outDir: string): PreOptimizedManifest {
  const runPath = join(outDir, RUN_FILE);
  const identities = readdirSync(outDir)
    .filter((name) => name.endsWith(RECORD_SUFFIX))
    .map((name) => JSON.parse(readFileSync(join(outDir, name), 'utf8')) as PreOptimizedRecord)
    .filter((record) => existsSync(join(outDir, record.file)))
    .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const evaluated = identities.filter((r) => r.lossBefore !== undefined && r.lossAfter !== undefined);
  const summary = {
    count: identities.length,
    meanLossBefore: mean(evaluated.map((r) => r.lossBefore!)),
    meanLossAfter: mean(evaluated.map((r) => r.lossAfter!)),
    improved: evaluated.length ? evaluated.filter((r) => r.lossAfter! < r.lossBefore!).length : undefined,
    meanSeconds: mean(identities.map((r) => r.seconds)),
  };
  const manifest: PreOptimizedManifest = {
    format: PRE_OPTIMIZED_FORMAT,
    ...(existsSync(runPath) ? { run: JSON.parse(readFileSync(runPath, 'utf8')) as Record<string, unknown> } : {}),
    identities,
    summary: JSON.parse(JSON.stringify(summary)) as PreOptimizedManifest['summary'],
  };
  writeJsonAtomic(join(outDir, MANIFEST_FILE), manifest);
  return manifest;
}
