// The parity framework: a check compares one component against a fixture folder and yields one result per case.
// Results print as JSON lines `{"component","case","maxAbsErr","tolerance","ok"}` (gpu-runner/commands/sd15.ts parity).

export interface ParityResult {
  component: string;
  case: string;
  maxAbsErr: number;
  tolerance: number;
  ok: boolean;
  /** Set when the case could not run (missing tensor, model error); the result then fails. */
  error?: string;
}

export interface ParityCheck {
  /** e.g. "scheduler", "tokenizer", "unet", "text_encoder", "vae", "lora". */
  component: string;
  /** Whether `fixtureDir` holds data for this component (its sub-folder exists); checks that do not apply are skipped
   *  silently, so one command serves folders holding any subset of the components. */
  appliesTo(fixtureDir: string): boolean;
  /** Runs every case the folder holds (discovered from its files, never from a list of names). */
  run(fixtureDir: string): AsyncIterable<ParityResult> | Iterable<ParityResult>;
}

/** Largest |actual − expected| over all elements; NaN anywhere (or a length mismatch) gives Infinity. */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i]! - expected[i]!);
    if (!(diff <= max)) max = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
  }
  return max;
}

export function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]!));
  return max;
}

/** A relative tolerance turned into an absolute one: rel × max(1, max|expected|). */
export function scaledTolerance(relative: number, expected: ArrayLike<number>): number {
  return relative * Math.max(1, maxAbs(expected));
}

/** Builds a result; `ok` needs a finite error within tolerance. */
export function compare(
  component: string,
  caseName: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
): ParityResult {
  const maxAbsErr = maxAbsDiff(actual, expected);
  return { component, case: caseName, maxAbsErr, tolerance, ok: Number.isFinite(maxAbsErr) && maxAbsErr <= tolerance };
}

/** A failed result for a case that threw. */
export function failure(component: string, caseName: string, tolerance: number, error: unknown): ParityResult {
  const message = error instanceof Error ? error.message : String(error);
  return { component, case: caseName, maxAbsErr: Number.POSITIVE_INFINITY, tolerance, ok: false, error: message };
}
