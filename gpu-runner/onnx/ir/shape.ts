import type { Dim, Shape } from './types.ts';
import { shapeToString } from './types.ts';

/** Numpy/ONNX multidirectional broadcasting; symbolic dims broadcast only against 1 or the same symbol. */
export function broadcastShapes(op: string, ...shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1 || d === dim) continue;
      if (dim === 1) dim = d;
      else throw new Error(`${op}: shapes ${shapes.map(shapeToString).join(' and ')} do not broadcast`);
    }
    out.push(dim);
  }
  return out;
}

export function normalizeAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function product(dims: readonly Dim[], op = 'shape'): number {
  let p = 1;
  for (const d of dims) {
    if (typeof d !== 'number') throw new Error(`${op}: symbolic dim '${d}' where a static size is needed`);
    p *= d;
  }
  return p;
}

export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
