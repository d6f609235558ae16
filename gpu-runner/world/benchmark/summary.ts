// The benchmark's numbers: per-row means with their spread, median personalization time, file size, and
// HyperDreamBooth's speed-up over DreamBooth-LoRA (paper: 25×; our target ≥ 30×, docs/targets.md).
import type { ImageScore, SubjectOutcome, WorldBenchmarkResult } from './harness.ts';
import { subjectLabel } from './harness.ts';
import { HEADS } from '../evaluators/heads.ts';
import { median, spread, type Spread } from './stats.ts';

export interface SummaryRow {
  readonly label: string;
  readonly kind: 'method' | 'base-model' | 'renders';
  readonly identitySimilarity: Spread;
  readonly promptFidelity: Spread;
  readonly referenceSimilarity: Spread;
  /** Median over identities of the whole personalization's wall time; null for reference rows. */
  readonly medianTotalMs: number | null;
  readonly medianStepMs: number | null;
  readonly steps: number | null;
  readonly fileBytes: number | null;
  /** Share of images whose evaluator head reads the truth, per head (identity attributes, then prompt context). */
  readonly headAccuracy: Readonly<Record<string, number>>;
}

export interface SpeedUp {
  /** Median wall time of DreamBooth-LoRA ÷ that of HyperDreamBooth (graph building and sessions included). */
  readonly total: number;
  /** Optimizer time only (steps × median step time), hypernetwork prediction excluded. */
  readonly optimizerSteps: number;
}

function metric(scores: readonly ImageScore[], pick: (s: ImageScore) => number): Spread {
  return spread(scores.map(pick));
}

export function summarizeOutcome(outcome: SubjectOutcome): SummaryRow {
  const { runs, scores } = outcome;
  const stepTimes = runs.map((r) => r.stepMs).filter((t): t is number => t !== null);
  return {
    label: subjectLabel(outcome.subject),
    kind: outcome.subject.kind,
    identitySimilarity: metric(scores, (s) => s.identitySimilarity),
    promptFidelity: metric(scores, (s) => s.promptFidelity),
    referenceSimilarity: metric(scores, (s) => s.referenceSimilarity),
    medianTotalMs: runs.length > 0 ? median(runs.map((r) => r.totalMs)) : null,
    medianStepMs: stepTimes.length > 0 ? median(stepTimes) : null,
    steps: runs.length > 0 ? runs[0]!.steps : null,
    fileBytes: runs.length > 0 ? median(runs.map((r) => r.fileBytes)) : null,
    headAccuracy: Object.fromEntries(HEADS.map((h) => [h.name, scores.filter((s) => s.hits[h.name]).length / scores.length])),
  };
}

export function summarize(result: WorldBenchmarkResult): SummaryRow[] {
  return result.outcomes.map(summarizeOutcome);
}

/** null when either method was not run. */
export function speedUp(rows: readonly SummaryRow[]): SpeedUp | null {
  const hdb = rows.find((r) => r.label === 'hyperdreambooth');
  const lora = rows.find((r) => r.label === 'dreambooth-lora');
  if (!hdb?.medianTotalMs || !lora?.medianTotalMs || !hdb.medianStepMs || !lora.medianStepMs || !hdb.steps || !lora.steps) return null;
  return {
    total: lora.medianTotalMs / hdb.medianTotalMs,
    optimizerSteps: (lora.steps * lora.medianStepMs) / (hdb.steps * hdb.medianStepMs),
  };
}

/**
 * HyperDreamBooth's speed-up over DreamBooth-LoRA per TEST face (DreamBooth-LoRA's wall time over HyperDreamBooth's on
 * the same face): the spread behind the ratio of medians. Null unless both ran.
 */
export function speedUpPerFace(result: WorldBenchmarkResult): { min: number; max: number; byIdentity: Record<string, number> } | null {
  const times = (method: string) => new Map(result.outcomes.flatMap((o) => o.runs).filter((r) => r.method === method).map((r) => [r.identityId, r.totalMs]));
  const hdb = times('hyperdreambooth');
  const lora = times('dreambooth-lora');
  const byIdentity = Object.fromEntries([...hdb].filter(([id]) => lora.has(id)).map(([id, ms]) => [String(id), lora.get(id)! / ms]));
  const ratios = Object.values(byIdentity);
  return ratios.length === 0 ? null : { min: Math.min(...ratios), max: Math.max(...ratios), byIdentity };
}

const withSpread = (s: Spread) => `${s.mean.toFixed(3)} ± ${s.sd.toFixed(3)}`;

/** Rows for printTable: one per method or reference row. */
export function tableRows(rows: readonly SummaryRow[]): Record<string, string | number | null>[] {
  return rows.map((r) => ({
    method: r.label,
    'identity sim': withSpread(r.identitySimilarity),
    'prompt fidelity': withSpread(r.promptFidelity),
    'reference sim': withSpread(r.referenceSimilarity),
    images: r.identitySimilarity.n,
    steps: r.steps,
    'time s (median)': r.medianTotalMs === null ? null : (r.medianTotalMs / 1000).toFixed(2),
    'step ms (median)': r.medianStepMs === null ? null : r.medianStepMs.toFixed(1),
    'file KB (fp16)': r.fileBytes === null ? null : (r.fileBytes / 1024).toFixed(1),
  }));
}

/** Rows for printTable: per-head accuracy (identity heads, then context heads), the diagnosis behind the means. */
export function headAccuracyRows(rows: readonly SummaryRow[]): Record<string, string>[] {
  return rows.map((r) => ({
    method: r.label,
    ...Object.fromEntries(HEADS.map((h) => [`${h.group === 'context' ? 'ctx' : 'id'} ${h.name}`, r.headAccuracy[h.name]!.toFixed(2)])),
  }));
}

export interface PairedComparison {
  readonly a: string;
  readonly b: string;
  /** Per face (TEST identity): a's mean over its images minus b's, identity similarity and prompt fidelity. */
  readonly byIdentity: Readonly<Record<string, { readonly identity: number; readonly fidelity: number }>>;
  /** Mean and spread of those per-face differences (paired: same face, prompts and sampler seeds). */
  readonly identity: Spread;
  readonly fidelity: Spread;
  /** Faces where a scores at least b on identity. */
  readonly identityWins: number;
}

/**
 * Two rows compared face by face: both personalize the same face and sample the same prompts with the same seeds, so
 * the per-face difference removes what the face itself contributes and its spread says whether a gap is real.
 * Null unless both rows ran.
 */
export function pairedComparison(result: WorldBenchmarkResult, a: string, b: string): PairedComparison | null {
  const find = (label: string) => result.outcomes.find((o) => subjectLabel(o.subject) === label);
  const rowA = find(a);
  const rowB = find(b);
  if (!rowA || !rowB) return null;
  const faceMean = (scores: readonly ImageScore[], id: number, pick: (s: ImageScore) => number) => {
    const own = scores.filter((s) => s.identityId === id);
    return own.reduce((sum, s) => sum + pick(s), 0) / own.length;
  };
  const byIdentity = Object.fromEntries(
    result.identityIds.map((id) => [
      String(id),
      {
        identity: faceMean(rowA.scores, id, (s) => s.identitySimilarity) - faceMean(rowB.scores, id, (s) => s.identitySimilarity),
        fidelity: faceMean(rowA.scores, id, (s) => s.promptFidelity) - faceMean(rowB.scores, id, (s) => s.promptFidelity),
      },
    ]),
  );
  const differences = Object.values(byIdentity);
  return {
    a,
    b,
    byIdentity,
    identity: spread(differences.map((d) => d.identity)),
    fidelity: spread(differences.map((d) => d.fidelity)),
    identityWins: differences.filter((d) => d.identity >= 0).length,
  };
}
