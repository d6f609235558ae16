// Plain-JS float64 reference implementations used to check the forward of emitted ops. Deliberately naive loops.

export interface Nd {
  readonly dims: readonly number[];
  readonly data: Float64Array;
}

export const nd = (dims: readonly number[], data: ArrayLike<number>): Nd => ({ dims: [...dims], data: Float64Array.from(data) });
const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
const stridesOf = (dims: readonly number[]) => dims.map((_, i) => size(dims.slice(i + 1)));

export function map(x: Nd, f: (v: number) => number): Nd {
  return { dims: x.dims, data: x.data.map(f) };
}

/** Broadcasting elementwise binary op. */
export function zip(a: Nd, b: Nd, f: (x: number, y: number) => number): Nd {
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (d: readonly number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [da, db] = [pad(a.dims), pad(b.dims)];
  const dims = da.map((d, i) => Math.max(d, db[i]!));
  const [sa, sb, so] = [stridesOf(da), stridesOf(db), stridesOf(dims)];
  const out = new Float64Array(size(dims));
  for (let i = 0; i < out.length; i++) {
    let ia = 0;
    let ib = 0;
    for (let k = 0; k < rank; k++) {
      const c = Math.floor(i / so[k]!) % dims[k]!;
      ia += (da[k] === 1 ? 0 : c) * sa[k]!;
      ib += (db[k] === 1 ? 0 : c) * sb[k]!;
    }
    out[i] = f(a.data[ia]!, b.data[ib]!);
  }
  return { dims, data: out };
}

/** Error function to ~1e-15 (Taylor series near 0, continued fraction of erfc beyond). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 100; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz), accurate for |x| ≥ 2.5
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function matmul(a: Nd, b: Nd): Nd {
  const [m, k] = a.dims.slice(-2) as [number, number];
  const n = b.dims[b.dims.length - 1]!;
  const batchA = a.dims.slice(0, -2);
  const batchB = b.dims.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const pad = (d: readonly number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [ba, bb] = [pad(batchA), pad(batchB)];
  const batch = ba.map((d, i) => Math.max(d, bb[i]!));
  const out = new Float64Array(size(batch) * m * n);
  const [sa, sb, so] = [stridesOf(ba), stridesOf(bb), stridesOf(batch)];
  for (let t = 0; t < size(batch); t++) {
    let oa = 0;
    let ob = 0;
    for (let i = 0; i < rank; i++) {
      const c = Math.floor(t / so[i]!) % batch[i]!;
      oa += (ba[i] === 1 ? 0 : c) * sa[i]!;
      ob += (bb[i] === 1 ? 0 : c) * sb[i]!;
    }
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[oa * m * k + i * k + p]! * b.data[ob * k * n + p * n + j]!;
        out[t * m * n + i * n + j] = s;
      }
  }
  return { dims: [...batch, m, n], data: out };
}

export interface Conv2dParams {
  stride: [number, number];
  pads: [number, number, number, number];
  dilation: [number, number];
  group: number;
}

export function conv2d(x: Nd, w: Nd, b: Nd | undefined, p: Conv2dParams): Nd {
  const [n, c, h, wd] = x.dims as [number, number, number, number];
  const [m, cg, kh, kw] = w.dims as [number, number, number, number];
  const oh = Math.floor((h + p.pads[0] + p.pads[2] - p.dilation[0] * (kh - 1) - 1) / p.stride[0]) + 1;
  const ow = Math.floor((wd + p.pads[1] + p.pads[3] - p.dilation[1] * (kw - 1) - 1) / p.stride[1]) + 1;
  const out = new Float64Array(n * m * oh * ow);
  const mg = m / p.group;
  for (let bi = 0; bi < n; bi++)
    for (let o = 0; o < m; o++) {
      const grp = Math.floor(o / mg);
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = b ? b.data[o]! : 0;
          for (let ci = 0; ci < cg; ci++)
            for (let u = 0; u < kh; u++)
              for (let v = 0; v < kw; v++) {
                const iy = y * p.stride[0] + u * p.dilation[0] - p.pads[0];
                const ix = xx * p.stride[1] + v * p.dilation[1] - p.pads[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += x.data[((bi * c + grp * cg + ci) * h + iy) * wd + ix]! * w.data[((o * cg + ci) * kh + u) * kw + v]!;
              }
          out[((bi * m + o) * oh + y) * ow + xx] = s;
        }
    }
  return { dims: [n, m, oh, ow], data: out };
}

export function convTranspose2d(x: Nd, w: Nd, b: Nd | undefined, p: Conv2dParams & { outputPadding: [number, number] }): Nd {
  const [n, c, h, wd] = x.dims as [number, number, number, number];
  const [, mg, kh, kw] = w.dims as [number, number, number, number];
  const m = mg * p.group;
  const cg = c / p.group;
  const oh = p.stride[0] * (h - 1) + p.outputPadding[0] + p.dilation[0] * (kh - 1) + 1 - p.pads[0] - p.pads[2];
  const ow = p.stride[1] * (wd - 1) + p.outputPadding[1] + p.dilation[1] * (kw - 1) + 1 - p.pads[1] - p.pads[3];
  const out = new Float64Array(n * m * oh * ow);
  for (let bi = 0; bi < n; bi++)
    for (let o = 0; o < m; o++) for (let i = 0; i < oh * ow; i++) out[(bi * m + o) * oh * ow + i] = b ? b.data[o]! : 0;
  for (let bi = 0; bi < n; bi++)
    for (let ci = 0; ci < c; ci++) {
      const grp = Math.floor(ci / cg);
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < wd; xx++)
          for (let oc = 0; oc < mg; oc++)
            for (let u = 0; u < kh; u++)
              for (let v = 0; v < kw; v++) {
                const oy = y * p.stride[0] + u * p.dilation[0] - p.pads[0];
                const ox = xx * p.stride[1] + v * p.dilation[1] - p.pads[1];
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                const o = grp * mg + oc;
                out[((bi * m + o) * oh + oy) * ow + ox]! += x.data[((bi * c + ci) * h + y) * wd + xx]! * w.data[((ci * mg + oc) * kh + u) * kw + v]!;
              }
    }
  return { dims: [n, m, oh, ow], data: out };
}

/** Applies `f` to every 1-D lane along `axis` (softmax, normalization). */
export function lanes(x: Nd, axis: number, f: (lane: number[]) => number[]): Nd {
  const a = axis < 0 ? axis + x.dims.length : axis;
  const st = stridesOf(x.dims);
  const len = x.dims[a]!;
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < x.data.length; i++) {
    if (Math.floor(i / st[a]!) % len !== 0) continue;
    const idx = Array.from({ length: len }, (_, j) => i + j * st[a]!);
    f(idx.map((k) => x.data[k]!)).forEach((v, j) => (out[idx[j]!] = v));
  }
  return { dims: x.dims, data: out };
}

export const softmaxLane = (l: number[]) => {
  const mx = Math.max(...l);
  const e = l.map((v) => Math.exp(v - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

export const normalizeLane = (eps: number) => (l: number[]) => {
  const mean = l.reduce((a, b) => a + b, 0) / l.length;
  const variance = l.reduce((a, b) => a + (b - mean) ** 2, 0) / l.length;
  return l.map((v) => (v - mean) / Math.sqrt(variance + eps));
};

export function transpose(x: Nd, perm: readonly number[]): Nd {
  const dims = perm.map((p) => x.dims[p]!);
  const sIn = stridesOf(x.dims);
  const sOut = stridesOf(dims);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let k = 0; k < dims.length; k++) src += (Math.floor(i / sOut[k]!) % dims[k]!) * sIn[perm[k]!]!;
    out[i] = x.data[src]!;
  }
  return { dims, data: out };
}

export function upsampleNearest(x: Nd, f: number): Nd {
  const [n, c, h, w] = x.dims as [number, number, number, number];
  const out = new Float64Array(n * c * h * f * w * f);
  for (let i = 0; i < n * c; i++)
    for (let y = 0; y < h * f; y++)
      for (let xx = 0; xx < w * f; xx++) out[(i * h * f + y) * w * f + xx] = x.data[(i * h + Math.floor(y / f)) * w + Math.floor(xx / f)]!;
  return { dims: [n, c, h * f, w * f], data: out };
}

/** Reduction over `axes` with keepdims. */
export function reduce(x: Nd, axes: readonly number[], f: (lane: number[]) => number): Nd {
  const dims = x.dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const st = stridesOf(x.dims);
  const groups = new Map<number, number[]>();
  const so = stridesOf(dims);
  for (let i = 0; i < x.data.length; i++) {
    let key = 0;
    for (let k = 0; k < dims.length; k++) key += (axes.includes(k) ? 0 : Math.floor(i / st[k]!) % x.dims[k]!) * so[k]!;
    const g = groups.get(key);
    if (g) g.push(x.data[i]!);
    else groups.set(key, [x.data[i]!]);
  }
  const out = new Float64Array(size(dims));
  for (const [k, l] of groups) out[k] = f(l);
  return { dims, data: out };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length} ≠ ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(Number(actual[i]) - Number(expected[i]));
    if (!(err <= tol * Math.max(1, Math.abs(Number(expected[i]))))) return `element ${i}: ${actual[i]} vs ${expected[i]}`;
  }
  return undefined;
}
