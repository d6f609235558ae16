// Plain statistics of the benchmark's rows.

export interface Spread {
  readonly mean: number;
  /** Sample standard deviation over all scored images (0 for a single image). */
  readonly sd: number;
  readonly n: number;
}

export function spread(values: readonly number[]): Spread {
  const n = values.length;
  if (n === 0) throw new Error('spread of no values');
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, sd: Math.sqrt(variance), n };
}

/** The middle value; the mean of the two middle values for an even count (the quick mode has two identities). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
