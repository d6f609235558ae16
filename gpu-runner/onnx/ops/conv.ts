import type { Value } from '../ir/graph.ts';
import { range } from '../ir/shape.ts';
import type { Dim, HostTensor } from '../ir/types.ts';
import { shapeToString, tensor } from '../ir/types.ts';
import { attrInt, attrInts, defineOp, emit1, need, type InferContext } from './registry.ts';
import { reduceSum } from './reduce.ts';
import { matmul } from './linalg.ts';
import { concat, pad, reshape, slice, split, transpose, transposeLast2, unsqueeze } from './shape-ops.ts';

export interface ConvOptions {
  strides?: readonly number[];
  /** ONNX layout: [begin_0, begin_1, …, end_0, end_1, …]. */
  pads?: readonly number[];
  dilations?: readonly number[];
  group?: number;
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}

/** ONNX Conv; W is (M, C/group, k…). */
export function conv(x: Value, w: Value, b: Value | undefined, o: ConvOptions = {}): Value {
  return emit1('Conv', b ? [x, w, b] : [x, w], convAttrs(w.rank - 2, o));
}

/** torch.nn.functional.conv2d semantics (symmetric padding). */
export function conv2d(x: Value, w: Value, b?: Value, o: Conv2dOptions = {}): Value {
  const s = o.stride ?? 1;
  const p = o.padding ?? 0;
  const d = o.dilation ?? 1;
  return conv(x, w, b, { strides: [s, s], pads: [p, p, p, p], dilations: [d, d], group: o.groups ?? 1 });
}

/** ONNX ConvTranspose; W is (C, M/group, k…). */
export function convTranspose(x: Value, w: Value, b: Value | undefined, o: ConvOptions & { outputPadding?: readonly number[] } = {}): Value {
  const attrs: Record<string, number | number[]> = convAttrs(w.rank - 2, o);
  if (o.outputPadding) attrs.output_padding = [...o.outputPadding];
  return emit1('ConvTranspose', b ? [x, w, b] : [x, w], attrs);
}

function convAttrs(spatial: number, o: ConvOptions): Record<string, number | number[]> {
  return {
    strides: [...(o.strides ?? new Array<number>(spatial).fill(1))],
    pads: [...(o.pads ?? new Array<number>(2 * spatial).fill(0))],
    dilations: [...(o.dilations ?? new Array<number>(spatial).fill(1))],
    group: o.group ?? 1,
  };
}

interface ConvGeometry {
  spatial: number;
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
  kernel: number[];
}

function geometry(op: string, attrs: InferContext['attrs'], w: readonly Dim[]): ConvGeometry {
  if (attrs.auto_pad !== undefined && attrs.auto_pad !== 'NOTSET') throw new Error(`${op}: auto_pad is not supported; pass explicit pads`);
  const spatial = w.length - 2;
  const kernel = w.slice(2).map((d) => {
    if (typeof d !== 'number') throw new Error(`${op}: kernel dims must be static`);
    return d;
  });
  return {
    spatial,
    kernel,
    strides: attrInts(attrs, 'strides') ?? new Array<number>(spatial).fill(1),
    pads: attrInts(attrs, 'pads') ?? new Array<number>(2 * spatial).fill(0),
    dilations: attrInts(attrs, 'dilations') ?? new Array<number>(spatial).fill(1),
    group: attrInt(attrs, 'group', 1),
  };
}

const convAttrKinds = { strides: 'ints', pads: 'ints', dilations: 'ints', group: 'int', kernel_shape: 'ints', auto_pad: 'string' } as const;

/** Applies `f` to each group's slice of x and dy (split on channels) and concatenates the per-group weight cotangents. */
function perGroup(x: Value, dy: Value, group: number, f: (xg: Value, dyg: Value) => Value): Value {
  if (group === 1) return f(x, dy);
  const xs = split(x, new Array<number>(group).fill(x.staticShape[1]! / group), 1);
  const dys = split(dy, new Array<number>(group).fill(dy.staticShape[1]! / group), 1);
  return concat(xs.map((xg, i) => f(xg, dys[i]!)), 0);
}

/** Swaps the batch and channel axes, (N, C, …) ↔ (C, N, …). */
function swap01(x: Value): Value {
  return transpose(x, [1, 0, ...range(x.rank - 2).map((i) => i + 2)]);
}

/** Crops spatial axes 2… to `kernel` (the weight-gradient convolution can overshoot the kernel size). */
function cropKernel(x: Value, kernel: readonly number[]): Value {
  const dims = x.staticShape;
  if (kernel.every((k, i) => dims[i + 2] === k)) return x;
  return slice(x, kernel.map(() => 0), kernel, kernel.map((_, i) => i + 2));
}

defineOp({
  type: 'Conv', attrs: convAttrKinds,
  infer: (ctx) => {
    const x = need(ctx, 0);
    const w = need(ctx, 1);
    const geo = geometry('Conv', ctx.attrs, w.shape);
    if (x.shape.length !== w.shape.length) throw new Error(`Conv: input ${shapeToString(x.shape)} and weight ${shapeToString(w.shape)} ranks differ`);
    const c = x.shape[1];
    if (typeof c === 'number' && c !== (w.shape[1] as number) * geo.group) throw new Error(`Conv: input channels ${c} ≠ weight ${shapeToString(w.shape)} × group ${geo.group}`);
    const out: Dim[] = [x.shape[0]!, w.shape[0]!];
    for (let i = 0; i < geo.spatial; i++) {
      const h = x.shape[i + 2]!;
      if (typeof h !== 'number') throw new Error('Conv: spatial dims must be static');
      const eff = geo.dilations[i]! * (geo.kernel[i]! - 1) + 1;
      out.push(Math.floor((h + geo.pads[i]! + geo.pads[i + geo.spatial]! - eff) / geo.strides[i]!) + 1);
    }
    return [{ dtype: x.dtype, shape: out }];
  },
  // dX: see convInputGradient; dW: im2col as a batched MatMul (measured ≈ the forward Conv's cost; a Conv with dY as
  // kernel was 5× slower).
  vjp: ({ inputs: [x, w, b], dy: [g], attrs }) => {
    const geo = geometry('Conv', attrs, w!.shape);
    const dx = convInputGradient(g!, w!, x!.staticShape, geo);
    const dw = convWeightGradient(x!, g!, geo);
    const db = b ? reduceSum(g!, [0, ...range(geo.spatial).map((i) => i + 2)]) : undefined;
    return [dx, dw, db];
  },
});

/**
 * dX. Unit strides: a plain Conv of dY with the channel-swapped, spatially flipped kernel and pads d(k−1)−p (measured
 * ~30% faster than onnxruntime's CPU ConvTranspose at large maps, which SD's 3×3/1×1 convolutions would otherwise
 * hit). A constant W's swap and flip are folded at session start; a trained W pays for them on every run, so the
 * recipe follows the ratio of output channels per group to the positions of dY (batch × map), i.e. of the kernel's
 * size to the column buffer's (bench:engine profiles, 1 thread):
 * - fewer channels than positions: swap and flip the kernel (a Transpose, then a MatMul with the anti-identity on the
 *   flattened kernel axis: an exact permutation; Gather and negative-step Slice are slow on that layout);
 * - up to 8× more: swap the kernel only and flip the maps instead, dX = flip(Conv(flip(dY), swapped W)) with the pads
 *   mirrored (one pass over W instead of two; the flips are negative-step Slices over maps smaller than W). At SD's
 *   640×640 3×3 on 16×16: 16.5 ms for dX against 19.5 ms by ConvTranspose and 22 ms by flipping the kernel;
 * - more still: ConvTranspose, which reads W as it is (its GEMM and col2im cost ~1.5× the Conv, but one pass over a
 *   kernel this much larger than the maps costs more: 1280×1280 3×3 on 8×8, 15 ms against 23 ms).
 * 1×1 kernels have no flip: ConvTranspose from as many channels as positions, the swapped kernel otherwise.
 * Other strides: ConvTranspose with the same geometry and output_padding restoring X's size (docs/engine.md recipe).
 */
function convInputGradient(dy: Value, w: Value, xs: readonly number[], geo: ConvGeometry): Value {
  const ys = dy.staticShape;
  const reach = geo.kernel.map((k, i) => geo.dilations[i]! * (k - 1));
  const [m, cg] = w.staticShape as [number, number];
  const mg = m / geo.group;
  const k = geo.kernel.reduce((a, b) => a * b, 1);
  const channelsPerPosition = mg / ys.reduce((a, b, i) => (i === 1 ? a : a * b), 1);
  const trained = !w.graph.isRunConstant(w);
  const unitStride = geo.strides.every((s) => s === 1) && geo.pads.every((p, i) => p <= reach[i % geo.spatial]!);
  // (M, C/G, k…) → (G, M/G, C/G, K) → (G, C/G, M/G, K)
  const swap = () => transpose(reshape(w, [geo.group, mg, cg, k]), [0, 2, 1, 3]);
  if (unitStride && trained && k > 1 && channelsPerPosition >= 1 && channelsPerPosition <= 8) {
    const sp = range(geo.spatial).map((i) => i + 2);
    const flip = (v: Value) => slice(v, sp.map(() => -1), sp.map((a) => -v.staticShape[a]! - 1), sp, sp.map(() => -1));
    const mirroredPads = [...range(geo.spatial).map((i) => reach[i]! - geo.pads[i + geo.spatial]!), ...range(geo.spatial).map((i) => reach[i]! - geo.pads[i]!)];
    const swapped = reshape(swap(), [cg * geo.group, mg, ...geo.kernel]);
    return flip(conv(flip(dy), swapped, undefined, { pads: mirroredPads, dilations: geo.dilations, group: geo.group }));
  }
  if (unitStride && (!trained || channelsPerPosition < 1)) {
    let swapped = swap();
    if (k > 1) swapped = matmul(swapped, w.graph.constant(antiIdentity(k, w.dtype), 'flip')); // reversed along K
    const flipped = reshape(swapped, [cg * geo.group, mg, ...geo.kernel]);
    return conv(dy, flipped, undefined, { pads: geo.pads.map((p, i) => reach[i % geo.spatial]! - p), dilations: geo.dilations, group: geo.group });
  }
  const outputPadding = range(geo.spatial).map((i) => {
    const full = geo.strides[i]! * (ys[i + 2]! - 1) + reach[i]! + 1 - geo.pads[i]! - geo.pads[i + geo.spatial]!;
    return xs[i + 2]! - full;
  });
  return convTranspose(dy, w, undefined, { strides: geo.strides, pads: geo.pads, dilations: geo.dilations, group: geo.group, outputPadding });
}

function antiIdentity(k: number, dtype: Value['dtype']): HostTensor {
  const values = new Array<number>(k * k).fill(0);
  for (let i = 0; i < k; i++) values[i * k + (k - 1 - i)] = 1;
  return tensor(dtype, [k, k], values);
}

/**
 * dW[m, c, u] = Σ_{n, o} dY[n, m, o] · X_pad[n, c, o·s + u·d]: gather the k^spatial strided windows of the padded
 * input (im2col, one Slice per kernel offset), then one batched MatMul per group. Large, well-shaped GEMMs instead of a
 * convolution whose kernel is the whole output map.
 */
function convWeightGradient(x: Value, dy: Value, geo: ConvGeometry): Value {
  const xs = x.staticShape;
  const ys = dy.staticShape;
  const [n, c] = xs as [number, number];
  const m = ys[1]!;
  const sp = range(geo.spatial);
  const out = ys.slice(2);
  const padded = geo.pads.some((p) => p !== 0) ? pad(x, [0, 0, ...geo.pads.slice(0, geo.spatial), 0, 0, ...geo.pads.slice(geo.spatial)]) : x;
  const offsets: number[][] = [[]];
  for (const k of geo.kernel) offsets.splice(0, offsets.length, ...offsets.flatMap((o) => range(k).map((u) => [...o, u])));
  const windows = offsets.map((u) => {
    const starts = u.map((ui, i) => ui * geo.dilations[i]!);
    const ends = starts.map((s0, i) => s0 + (out[i]! - 1) * geo.strides[i]! + 1);
    return unsqueeze(slice(padded, starts, ends, sp.map((i) => i + 2), geo.strides), [2]);
  });
  const kk = offsets.length;
  const p = out.reduce((a, d) => a * d, 1);
  const cols = reshape(concat(windows, 2), [n, geo.group, (c / geo.group) * kk, p]);
  // dY·colsᵀ lands in W's (M/G, C/G·K) layout directly; onnxruntime folds the cols transpose into the GEMM, whereas
  // transposing the (C/G·K, M/G) product afterwards cost 15–49 ms per 640×640 3×3 conv (bench:engine profile)
  let prod = matmul(reshape(dy, [n, geo.group, m / geo.group, p]), transposeLast2(cols)); // (N, G, M/G, C/G·K)
  if (n > 1) prod = reduceSum(prod, [0], false);
  return reshape(prod, [m, c / geo.group, ...geo.kernel]);
}

defineOp({
  type: 'ConvTranspose', attrs: { ...convAttrKinds, output_padding: 'ints', output_shape: 'ints' },
  infer: (ctx) => {
    const x = need(ctx, 0);
    const w = need(ctx, 1);
    if (ctx.attrs.output_shape !== undefined) throw new Error('ConvTranspose: output_shape is not supported; pass pads and output_padding');
    const geo = geometry('ConvTranspose', ctx.attrs, w.shape);
    const op = attrInts(ctx.attrs, 'output_padding') ?? new Array<number>(geo.spatial).fill(0);
    const out: Dim[] = [x.shape[0]!, (w.shape[1] as number) * geo.group];
    for (let i = 0; i < geo.spatial; i++) {
      const h = x.shape[i + 2]!;
      if (typeof h !== 'number') throw new Error('ConvTranspose: spatial dims must be static');
      out.push(geo.strides[i]! * (h - 1) + op[i]! + geo.dilations[i]! * (geo.kernel[i]! - 1) + 1 - geo.pads[i]! - geo.pads[i + geo.spatial]!);
    }
    return [{ dtype: x.dtype, shape: out }];
  },
  // the adjoint of a transposed convolution is the convolution with the same geometry; dW correlates dY with X
  vjp: ({ inputs: [x, w, b], dy: [g], attrs }) => {
    const geo = geometry('ConvTranspose', attrs, w!.shape);
    const dx = conv(g!, w!, undefined, { strides: geo.strides, pads: geo.pads, dilations: geo.dilations, group: geo.group });
    const dw = perGroup(x!, g!, geo.group, (xg, gg) =>
      swap01(cropKernel(conv(swap01(gg), swap01(xg), undefined, { strides: geo.dilations, dilations: geo.strides, pads: geo.pads }), geo.kernel)),
    );
    const db = b ? reduceSum(g!, [0, ...range(geo.spatial).map((i) => i + 2)]) : undefined;
    return [dx, dw, db];
  },
});
