// The sample sheet a person judges: one block per table row (world renders, base model, each method), inside a block
// one row per identity: its reference photo, then the first image of every prompt; a blank row between blocks.
import { tile } from '../png.ts';
import type { RgbImage } from '../render.ts';
import { subjectLabel, type SubjectOutcome, type WorldBenchmarkResult } from './harness.ts';

export interface SampleGrid {
  readonly image: RgbImage;
  /** What each row of tiles shows, top to bottom ('' for a separator). */
  readonly rows: readonly string[];
  readonly columns: readonly string[];
}

function blank(like: RgbImage): RgbImage {
  return { width: like.width, height: like.height, data: new Float32Array(like.data.length).fill(1) };
}

/** What a sheet shows: the benchmark's result, or any rows of images per identity and prompt (e.g. the base-model gate). */
export type SampleSheet = Pick<WorldBenchmarkResult, 'identityIds' | 'prompts' | 'references'> & {
  readonly outcomes: readonly Pick<SubjectOutcome, 'subject' | 'samples'>[];
};

export function sampleGrid(result: SampleSheet): SampleGrid {
  const first = result.references[0];
  if (!first) throw new Error('a sample grid needs at least one identity');
  const columns = ['reference', ...result.prompts.map((p) => p.text)];
  const tiles: RgbImage[] = [];
  const rows: string[] = [];
  result.outcomes.forEach((outcome, k) => {
    if (k > 0) {
      tiles.push(...columns.map(() => blank(first)));
      rows.push('');
    }
    outcome.samples.forEach((images, i) => {
      tiles.push(result.references[i]!, ...images);
      rows.push(`${subjectLabel(outcome.subject)} / identity ${result.identityIds[i]}`);
    });
  });
  return { image: tile(tiles, columns.length), rows, columns };
}
