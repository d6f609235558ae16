import { grad } from '../autodiff/grad.ts';
import { Graph, type Value } from '../ir/graph.ts';
import type { HostTensor } from '../ir/types.ts';
import { mul } from '../ops/elementwise.ts';
import { reduceSum } from '../ops/reduce.ts';
import { runGraph } from './ort.ts';
import { normal, randomTensor, seededRng, uniform, type Rng } from './random.ts';
import type { Nd } from './reference.ts';

/**
 * For ops whose onnxruntime kernels are float32-only: compares the float32 gradient graph's output, coordinate by
 * coordinate, with central finite differences of a float64 JS reference forward (testing/reference.ts). The numeric
 * side is float64-accurate (step REFERENCE_STEP: error ≈ 1e-10), so the comparison measures the rule and float32
 * rounding only: |an − fd| ≤ REFERENCE_RTOL·max|fd| + REFERENCE_ATOL (observed worst: 2.1e-7·max|fd|, docs/engine.md
 * says ≤ 4e-7).
 */
export const REFERENCE_STEP = 1e-5;
export const REFERENCE_RTOL = 1e-6;
export const REFERENCE_ATOL = 1e-7;

export interface ReferenceGradCase {
  readonly name: string;
  readonly inputs: Readonly<Record<string, readonly number[]>>;
  readonly sample?: Readonly<Record<string, (rng: Rng) => number>>;
  readonly build: (g: Graph, v: Record<string, Value>) => Value;
  readonly reference: (x: Record<string, Nd>) => Nd;
}

export interface ReferenceGradReport {
  readonly checks: number;
  /** Worst |an − fd| / max|fd| over all inputs. */
  readonly worstRelativeError: number;
  readonly failures: readonly string[];
}

export async function referenceGradCheck(c: ReferenceGradCase, seed: number): Promise<ReferenceGradReport> {
  const rng = seededRng(seed);
  const g = new Graph(c.name.replace(/\W+/g, '_'));
  const values: Record<string, Value> = {};
  const feeds: Record<string, HostTensor> = {};
  for (const [name, dims] of Object.entries(c.inputs)) {
    values[name] = g.input(name, 'float32', dims);
    feeds[name] = randomTensor('float32', dims, rng, c.sample?.[name] ?? ((r) => uniform(r)));
  }
  const out = c.build(g, values);
  const weights = randomTensor('float32', out.staticShape, rng, normal);
  g.output(reduceSum(mul(out, g.constant(weights, 'cotangent'))), 'loss');
  const names = Object.keys(c.inputs);
  const analytic = await runGraph(grad(g, { loss: 'loss', wrt: names }), feeds);

  const point: Record<string, Nd> = {};
  for (const n of names) point[n] = { dims: [...feeds[n]!.dims], data: Float64Array.from(feeds[n]!.data as Float32Array) };
  const w = Float64Array.from(weights.data as Float32Array);
  const loss = () => c.reference(point).data.reduce((s, v, i) => s + v * w[i]!, 0);

  const failures: string[] = [];
  let checks = 0;
  let worstRelativeError = 0;
  for (const n of names) {
    const x = point[n]!.data;
    const numeric = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const keep = x[i]!;
      x[i] = keep + REFERENCE_STEP;
      const up = loss();
      x[i] = keep - REFERENCE_STEP;
      const down = loss();
      x[i] = keep;
      numeric[i] = (up - down) / (2 * REFERENCE_STEP);
    }
    const scale = numeric.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const an = analytic[`grad.${n}`]!.data as Float32Array;
    for (let i = 0; i < x.length; i++) {
      const err = Math.abs(an[i]! - numeric[i]!);
      checks++;
      worstRelativeError = Math.max(worstRelativeError, err / Math.max(scale, Number.MIN_VALUE));
      if (!(err <= REFERENCE_RTOL * scale + REFERENCE_ATOL)) failures.push(`${n}[${i}]: analytic ${an[i]} vs reference ${numeric[i]}`);
    }
  }
  return { checks, worstRelativeError, failures };
}
