import { grad } from '../autodiff/grad.ts';
import { Graph, type Value } from '../ir/graph.ts';
import type { HostTensor } from '../ir/types.ts';
import { isFloat } from '../ir/types.ts';
import { add, mul } from '../ops/elementwise.ts';
import { reduceSum } from '../ops/reduce.ts';
import { createSession, runSession } from './ort.ts';
import { normal, randomTensor, seededRng, uniform, type Rng } from './random.ts';

/**
 * Gradient checking against central finite differences evaluated by onnxruntime itself.
 *
 * float64 graphs (ops with double kernels): every coordinate of small inputs is checked with step
 * FLOAT64_STEP; truncation error ~ h²·f''' ≈ 1e-12 and round-off ~ ε₆₄/h ≈ 1e-10, so agreement to FLOAT64_RTOL is
 * a float64-accurate check. float32 graphs (Conv, ConvTranspose, Resize, Erf, Gelu, LayerNormalization have float32
 * CPU kernels only): directional derivatives along random unit directions, with Richardson extrapolation of two
 * central differences (error O(h⁴)), so the residual is dominated by float32 round-off of the loss (ε₃₂·|L|/h);
 * agreement is measured relative to the gradient's norm (which bounds every unit-direction derivative), plus the
 * round-off floor of a float32 difference quotient, FLOAT32_LOSS_ROUNDOFF·|L|/h (a loss of large magnitude cannot
 * resolve a finer difference; measured noise ≈ 7 ε₃₂·|L|).
 */
export const FLOAT64_STEP = 1e-6;
export const FLOAT64_RTOL = 1e-6;
export const FLOAT64_ATOL = 1e-9;
/** Large enough that round-off stays small; Richardson removes the h² truncation term. */
export const FLOAT32_STEP = 4e-2;
export const FLOAT32_RTOL = 5e-4;
export const FLOAT32_ATOL = 1e-4;
export const FLOAT32_LOSS_ROUNDOFF = 16 * 2 ** -23;
/** Inputs up to this many elements are checked coordinate by coordinate in float64; larger ones on a random subset. */
export const FLOAT64_COORDINATES = 48;
export const FLOAT32_DIRECTIONS = 3;

export interface GradCase {
  readonly name: string;
  readonly dtype: 'float32' | 'float64';
  /** Declares inputs (in `dtype`) on `g` and returns the outputs to differentiate. */
  readonly build: (g: Graph, rng: Rng) => Value | readonly Value[];
  /** Input samplers by name; default U(-1, 1). Keep inputs away from kinks (Abs, Relu, Max) and domain edges. */
  readonly sample?: Readonly<Record<string, (rng: Rng) => number>>;
  /** Values for non-float inputs (indices) and for inputs that must be fed but not differentiated. */
  readonly feeds?: (rng: Rng) => Record<string, HostTensor>;
  /** Float inputs that are not differentiated. */
  readonly constant?: readonly string[];
}

export interface GradCheckFailure {
  readonly input: string;
  readonly direction: string;
  readonly analytic: number;
  readonly numeric: number;
  readonly allowed: number;
}

export interface GradCheckReport {
  readonly name: string;
  readonly seed: number;
  readonly checks: number;
  readonly worstErrorRatio: number;
  readonly failures: readonly GradCheckFailure[];
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function shifted(t: HostTensor, v: Float64Array, h: number): HostTensor {
  const data = t.dtype === 'float64' ? new Float64Array(t.data as Float64Array) : new Float32Array(t.data as Float32Array);
  for (let i = 0; i < data.length; i++) data[i]! += h * v[i]!;
  return { dtype: t.dtype, dims: t.dims, data };
}

/** Builds the case's forward graph with loss = Σₖ sum(outₖ ⊙ Rₖ) (fixed random Rₖ), and its gradient graph. */
export function gradCheckGraphs(c: GradCase, seed: number): { forward: Graph; backward: Graph; wrt: string[]; feeds: Record<string, HostTensor> } {
  const rng = seededRng(seed);
  const forward = new Graph(c.name.replace(/\W+/g, '_'));
  const built = c.build(forward, rng);
  const outs = Array.isArray(built) ? (built as Value[]) : [built as Value];
  const terms = outs
    .filter((o) => isFloat(o.dtype))
    .map((o) => reduceSum(mul(o, forward.constant(randomTensor(o.dtype, o.staticShape, rng, normal), 'cotangent'))));
  forward.output(terms.reduce((a, b) => add(a, b)), 'loss');
  const given = c.feeds?.(rng) ?? {};
  const feeds: Record<string, HostTensor> = {};
  for (const name of forward.inputs) {
    const v = forward.value(name);
    feeds[name] = given[name] ?? randomTensor(v.dtype, v.staticShape, rng, c.sample?.[name] ?? ((r) => uniform(r)));
  }
  const wrt = forward.inputs.filter((n) => isFloat(forward.value(n).dtype) && !(c.constant ?? []).includes(n));
  const backward = grad(forward, { loss: 'loss', wrt });
  return { forward, backward, wrt, feeds };
}

export async function gradCheck(c: GradCase, seed: number): Promise<GradCheckReport> {
  const { forward, backward, wrt, feeds } = gradCheckGraphs(c, seed);
  const rng = seededRng(seed ^ 0x5eed);
  const [fs, bs] = await Promise.all([createSession(forward), createSession(backward)]);
  try {
    const analytic = await runSession(bs, feeds);
    const lossAt = async (name: string, v: Float64Array, h: number): Promise<number> => {
      const out = await runSession(fs, { ...feeds, [name]: shifted(feeds[name]!, v, h) });
      return Number(out.loss!.data[0]);
    };
    const central = async (name: string, v: Float64Array, h: number) => ((await lossAt(name, v, h)) - (await lossAt(name, v, -h))) / (2 * h);
    const baseLoss = Math.abs(Number((await runSession(fs, feeds)).loss!.data[0]));
    const failures: GradCheckFailure[] = [];
    let checks = 0;
    let worstErrorRatio = 0;
    for (const name of wrt) {
      const g = analytic[`grad.${name}`]!.data as Float64Array | Float32Array;
      const n = g.length;
      const gNorm = Math.sqrt(dot(g, g));
      const directions: { label: string; v: Float64Array }[] = [];
      if (c.dtype === 'float64') {
        const coords = n <= FLOAT64_COORDINATES ? [...Array(n).keys()] : Array.from({ length: FLOAT64_COORDINATES }, () => Math.floor(rng() * n));
        for (const i of coords) {
          const v = new Float64Array(n);
          v[i] = 1;
          directions.push({ label: `e${i}`, v });
        }
      } else {
        for (let k = 0; k < FLOAT32_DIRECTIONS; k++) {
          const v = Float64Array.from({ length: n }, () => normal(rng));
          const norm = Math.sqrt(dot(v, v));
          for (let i = 0; i < n; i++) v[i]! /= norm;
          directions.push({ label: `random${k}`, v });
        }
      }
      for (const { label, v } of directions) {
        const an = dot(g, v);
        let numeric: number;
        let allowed: number;
        if (c.dtype === 'float64') {
          numeric = await central(name, v, FLOAT64_STEP);
          allowed = FLOAT64_ATOL + FLOAT64_RTOL * Math.max(Math.abs(an), Math.abs(numeric));
        } else {
          const d1 = await central(name, v, FLOAT32_STEP);
          const d2 = await central(name, v, FLOAT32_STEP / 2);
          numeric = (4 * d2 - d1) / 3;
          allowed = FLOAT32_ATOL + FLOAT32_RTOL * gNorm + (FLOAT32_LOSS_ROUNDOFF * baseLoss) / (FLOAT32_STEP / 2);
        }
        const err = Math.abs(numeric - an);
        checks++;
        worstErrorRatio = Math.max(worstErrorRatio, err / Math.max(allowed, Number.MIN_VALUE));
        if (!(err <= allowed)) failures.push({ input: name, direction: label, analytic: an, numeric, allowed });
      }
    }
    return { name: c.name, seed, checks, worstErrorRatio, failures };
  } finally {
    await Promise.all([fs.release(), bs.release()]);
  }
}

