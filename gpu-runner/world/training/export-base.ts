// Writes the base model's EMA weights from a training checkpoint into a diffusers pack folder: `unet/` and
// `text_encoder/` (config.json + fp16 safetensors, names as diffusers/transformers), beside `vae/`; prints the run's
// loss curve summary from progress.jsonl.
// The command: gpu-runner/commands/world-export-base.ts.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeBasePack } from './base-params.ts';
import { PROGRESS_FILE } from './run-settings.ts';
import { readBaseCheckpoint } from './train-base.ts';

export interface BaseRunSummary {
  readonly steps: number;
  readonly minutes: number;
  readonly secondsPerStep: number;
  /** Mean weighted loss over the first and last logged windows, and at a few steps between. */
  readonly curve: readonly { step: number; loss: number; mse: number }[];
}

/** The loss curve of a run from its progress.jsonl (segments of a resumed run are summed). */
export function summarizeProgress(path: string): BaseRunSummary | undefined {
  if (!existsSync(path)) return undefined;
  const records = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, number | string>);
  const progress = records.filter((r) => r['event'] === 'progress') as { step: number; loss: number; mse: number; secondsPerStep: number }[];
  if (progress.length === 0) return undefined;
  const ends = records.filter((r) => r['event'] === 'stopped' || r['event'] === 'finished');
  const minutes = ends.reduce((sum, r) => sum + Number(r['minutes']), 0);
  const picks = [0, 0.1, 0.25, 0.5, 0.75, 1].map((f) => progress[Math.min(progress.length - 1, Math.round(f * (progress.length - 1)))]!);
  return {
    steps: progress[progress.length - 1]!.step + 1,
    minutes,
    secondsPerStep: progress.reduce((s, p) => s + p.secondsPerStep, 0) / progress.length,
    curve: picks.map(({ step, loss, mse }) => ({ step, loss, mse })),
  };
}

/** Writes the EMA weights of a training checkpoint as fp16 `unet/` and `text_encoder/` into `packDir`. */
export function exportBase(checkpoint: string, packDir: string) {
  const { model, ema, step, settings } = readBaseCheckpoint(checkpoint);
  const files = writeBasePack(packDir, model, ema, 'F16', { step: String(step), weights: `EMA ${settings.emaDecay}`, settings: JSON.stringify(settings) });
  const summary = summarizeProgress(join(dirname(checkpoint), PROGRESS_FILE));
  return { packDir, step, ...files, summary };
}
