import type { Value } from '../ir/graph.ts';
import { broadcastShapes, inversePermutation, normalizeAxis, product, range } from '../ir/shape.ts';
import type { Dim, DType } from '../ir/types.ts';
import { shapeToString, tensor } from '../ir/types.ts';
import { concatOf } from './concat-helpers.ts';
import { sumToShape, zerosLike } from './elementwise.ts';
import { attrInt, attrInts, constInts, defineOp, emit, emit1, need, type InferContext } from './registry.ts';

// ---- wrappers ----

/**
 * Reshape to `shape`. A string entry must name one of x's symbolic dims: at the same position it is emitted as 0
 * (copy), elsewhere as -1 (inferred, at most one).
 */
export function reshape(x: Value, shape: readonly Dim[]): Value {
  const target = shape.map((d, i) => (typeof d === 'number' ? d : x.shape[i] === d ? 0 : -1));
  return emit1('Reshape', [x, x.graph.int64s(target)]);
}

export function transpose(x: Value, perm: readonly number[]): Value {
  return emit1('Transpose', [x], { perm: [...perm] });
}

/** Swaps the last two axes. */
export function transposeLast2(x: Value): Value {
  const perm = range(x.rank);
  perm[x.rank - 1] = x.rank - 2;
  perm[x.rank - 2] = x.rank - 1;
  return transpose(x, perm);
}

export function concat(xs: readonly Value[], axis: number): Value {
  if (xs.length === 1) return xs[0]!;
  return emit1('Concat', xs, { axis });
}

export function split(x: Value, sizes: readonly number[], axis: number): Value[] {
  return emit('Split', [x, x.graph.int64s(sizes)], { axis });
}

/** Splits into `parts` equal chunks (torch.chunk for divisible sizes). */
export function chunk(x: Value, parts: number, axis: number): Value[] {
  const dim = x.shape[normalizeAxis('chunk', axis, x.rank)];
  if (typeof dim !== 'number' || dim % parts !== 0) throw new Error(`chunk: dim ${String(dim)} not divisible into ${parts}`);
  return split(x, new Array<number>(parts).fill(dim / parts), axis);
}

export function slice(x: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Value {
  const g = x.graph;
  return emit1('Slice', [x, g.int64s(starts), g.int64s(ends), g.int64s(axes), steps ? g.int64s(steps) : undefined]);
}

export function gather(data: Value, indices: Value, axis = 0): Value {
  return emit1('Gather', [data, indices], { axis });
}

export function expand(x: Value, shape: readonly number[]): Value {
  return emit1('Expand', [x, x.graph.int64s(shape)]);
}

export function squeeze(x: Value, axes: readonly number[]): Value {
  return emit1('Squeeze', [x, x.graph.int64s(axes)]);
}

export function unsqueeze(x: Value, axes: readonly number[]): Value {
  return emit1('Unsqueeze', [x, x.graph.int64s(axes)]);
}

/** Zero padding (constant mode); pads = [begin_0, …, begin_n, end_0, …, end_n] as in ONNX. */
export function pad(x: Value, pads: readonly number[]): Value {
  return emit1('Pad', [x, x.graph.int64s(pads)], { mode: 'constant' });
}

export function constantOfShape(g: Value['graph'], shape: readonly number[], value: number, dtype: DType = 'float32'): Value {
  return emit1('ConstantOfShape', [g.int64s(shape)], { value: tensor(dtype, [1], [value]) });
}

export function scatterNDAdd(data: Value, indices: Value, updates: Value): Value {
  return emit1('ScatterND', [data, indices, updates], { reduction: 'add' });
}

export function gatherND(data: Value, indices: Value): Value {
  return emit1('GatherND', [data, indices]);
}

// ---- shape rules ----

function reshapeRule(ctx: InferContext) {
  const x = need(ctx, 0);
  const target = constInts(ctx, 1, 'shape')!;
  if (ctx.attrs.allowzero) throw new Error('Reshape: allowzero=1 is not supported');
  const out: Dim[] = target.map((d, i) => (d === 0 ? x.shape[i]! : d));
  const minus = out.filter((d) => d === -1).length;
  if (minus > 1) throw new Error('Reshape: more than one -1');
  const inSym = x.shape.filter((d, i) => typeof d === 'string' && !(target[i] === 0));
  const staticIn = product(x.shape.filter((d) => typeof d === 'number'));
  const staticOut = product(out.filter((d) => typeof d === 'number' && d !== -1));
  const outSym = out.filter((d) => typeof d === 'string');
  const symIn = x.shape.filter((d) => typeof d === 'string');
  if (minus === 1) {
    const i = out.indexOf(-1);
    if (inSym.length === 0) {
      if (staticIn % staticOut !== 0) throw new Error(`Reshape: cannot reshape ${shapeToString(x.shape)} to [${target.join(', ')}]`);
      out[i] = staticIn / staticOut;
    } else if (inSym.length === 1 && staticIn === staticOut) {
      out[i] = inSym[0]!;
    } else throw new Error(`Reshape: cannot infer -1 from ${shapeToString(x.shape)} to [${target.join(', ')}]`);
  } else if (staticIn !== staticOut || symIn.length !== outSym.length) {
    throw new Error(`Reshape: ${shapeToString(x.shape)} has a different size than [${target.join(', ')}]`);
  }
  return [{ dtype: x.dtype, shape: out }];
}

function sliceBounds(dim: number, start: number, end: number, step: number): [number, number, number] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
    return [s, e, Math.max(0, Math.ceil((e - s) / step))];
  }
  s = clamp(s, -1, dim - 1);
  e = clamp(e, -1, dim - 1);
  return [s, e, Math.max(0, Math.ceil((e - s) / step))];
}

function sliceSpec(ctx: InferContext) {
  const x = need(ctx, 0);
  const starts = constInts(ctx, 1, 'starts')!;
  const ends = constInts(ctx, 2, 'ends')!;
  const axes = (constInts(ctx, 3, 'axes') ?? range(starts.length)).map((a) => normalizeAxis('Slice', a, x.shape.length));
  const steps = constInts(ctx, 4, 'steps') ?? starts.map(() => 1);
  return { x, starts, ends, axes, steps };
}

function sliceRule(ctx: InferContext) {
  const { x, starts, ends, axes, steps } = sliceSpec(ctx);
  const shape = [...x.shape];
  axes.forEach((a, k) => {
    const dim = shape[a];
    if (typeof dim !== 'number') throw new Error('Slice: cannot slice a symbolic dim');
    shape[a] = sliceBounds(dim, starts[k]!, ends[k]!, steps[k]!)[2];
  });
  return [{ dtype: x.dtype, shape }];
}

// ---- definitions ----

defineOp({
  type: 'Reshape', attrs: { allowzero: 'int' }, infer: reshapeRule,
  vjp: ({ inputs: [x], dy: [g] }) => [reshape(g!, x!.staticShape), undefined],
});

defineOp({
  type: 'Transpose', attrs: { perm: 'ints' },
  infer: (ctx) => {
    const x = need(ctx, 0);
    const perm = attrInts(ctx.attrs, 'perm') ?? range(x.shape.length).reverse();
    if (perm.length !== x.shape.length) throw new Error(`Transpose: perm [${perm.join(', ')}] for rank ${x.shape.length}`);
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }];
  },
  vjp: ({ inputs: [x], dy: [g], attrs }) => [transpose(g!, inversePermutation(attrInts(attrs, 'perm') ?? range(x!.rank).reverse()))],
});

defineOp({
  type: 'Concat', attrs: { axis: 'int' },
  infer: (ctx) => {
    const first = need(ctx, 0);
    const axis = normalizeAxis('Concat', attrInt(ctx.attrs, 'axis', 0), first.shape.length);
    return [concatOf(ctx.inputs.map((t) => t!), axis)];
  },
  vjp: ({ inputs, dy: [g], attrs }) => {
    const axis = normalizeAxis('Concat', attrInt(attrs, 'axis', 0), g!.rank);
    return split(g!, inputs.map((v) => v!.staticShape[axis]!), axis);
  },
});

defineOp({
  type: 'Split', attrs: { axis: 'int', num_outputs: 'int' },
  infer: (ctx) => {
    const x = need(ctx, 0);
    const axis = normalizeAxis('Split', attrInt(ctx.attrs, 'axis', 0), x.shape.length);
    const sizes = constInts(ctx, 1, 'split');
    if (!sizes) throw new Error('Split: pass explicit split sizes');
    if (sizes.reduce((a, b) => a + b, 0) !== x.shape[axis]) throw new Error(`Split: sizes [${sizes.join(', ')}] do not add up to dim ${String(x.shape[axis])}`);
    return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === axis ? s : d)) }));
  },
  vjp: ({ outputs, dy, attrs, inputs: [x] }) => {
    const axis = normalizeAxis('Split', attrInt(attrs, 'axis', 0), x!.rank);
    return [concat(outputs.map((o, i) => dy[i] ?? zerosLike(o)), axis), undefined];
  },
});

defineOp({
  type: 'Slice', attrs: {}, infer: sliceRule,
  // the adjoint of a unit-step slice is zero padding back to the input's shape
  vjp: ({ g, node, inputs, dy: [dyv] }) => {
    const x = inputs[0]!;
    const spec = sliceSpec({ op: 'Slice', inputs: inputs.map((v) => v?.type), attrs: node.attrs, constant: (i) => g.constantOf(inputs[i]) });
    const dims = x.staticShape;
    const pads = new Array<number>(2 * dims.length).fill(0);
    spec.axes.forEach((a, k) => {
      if (spec.steps[k] !== 1) throw new Error('Slice: gradient implemented for step 1 only');
      const [s, , n] = sliceBounds(dims[a]!, spec.starts[k]!, spec.ends[k]!, 1);
      pads[a] = s;
      pads[a + dims.length] = dims[a]! - s - n;
    });
    return [pad(dyv!, pads)];
  },
});

defineOp({
  type: 'Pad', attrs: { mode: 'string' },
  infer: (ctx) => {
    const x = need(ctx, 0);
    if (ctx.inputs[3]) throw new Error('Pad: axes input not supported');
    const pads = constInts(ctx, 1, 'pads')!;
    const r = x.shape.length;
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i]! + pads[i + r]! : d)) }];
  },
  vjp: ({ g, inputs: [x, padsV], dy: [dyv], attrs }) => {
    if ((attrs.mode ?? 'constant') !== 'constant') throw new Error('Pad: gradient implemented for constant mode only');
    const pads = Array.from(g.constantOf(padsV)!.data as BigInt64Array, Number);
    const dims = x!.staticShape;
    const r = dims.length;
    return [slice(dyv!, dims.map((_, i) => pads[i]!), dims.map((d, i) => pads[i]! + d), range(r))];
  },
});

defineOp({
  type: 'Gather', attrs: { axis: 'int' },
  infer: (ctx) => {
    const data = need(ctx, 0);
    const idx = need(ctx, 1);
    if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw new Error('Gather: indices must be int64 or int32');
    const axis = normalizeAxis('Gather', attrInt(ctx.attrs, 'axis', 0), data.shape.length);
    return [{ dtype: data.dtype, shape: [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)] }];
  },
  // embedding gradient: scatter-add the cotangent rows into zeros (ScatterND, reduction = add)
  vjp: ({ inputs: [data, indices], dy: [dyv], attrs }) => {
    const dims = data!.staticShape;
    const axis = normalizeAxis('Gather', attrInt(attrs, 'axis', 0), dims.length);
    const q = indices!.rank;
    const p = axis;
    const dyRank = dyv!.rank;
    const toFront = [...range(q).map((i) => p + i), ...range(p), ...range(dyRank - p - q).map((i) => p + q + i)];
    const updates = transpose(dyv!, toFront);
    const restShape = [...dims.slice(0, axis), ...dims.slice(axis + 1)];
    const zeros = constantOfShape(data!.graph, [dims[axis]!, ...restShape], 0, data!.dtype);
    const idx = unsqueeze(indices!.dtype === 'int64' ? indices! : emit1('Cast', [indices!], { to: 7 }), [-1]);
    const scattered = scatterNDAdd(zeros, idx, updates);
    const back = [...range(p).map((i) => i + 1), 0, ...range(dims.length - p - 1).map((i) => p + 1 + i)];
    return [p === 0 ? scattered : transpose(scattered, back), undefined];
  },
});

defineOp({
  type: 'Expand', attrs: {},
  infer: (ctx) => {
    const x = need(ctx, 0);
    return [{ dtype: x.dtype, shape: broadcastShapes('Expand', x.shape, constInts(ctx, 1, 'shape')!) }];
  },
  vjp: ({ inputs: [x], dy: [g] }) => [sumToShape(g!, x!.staticShape), undefined],
});

defineOp({
  type: 'Squeeze', attrs: {},
  infer: (ctx) => {
    const x = need(ctx, 0);
    const axes = (constInts(ctx, 1, 'axes') ?? range(x.shape.length).filter((i) => x.shape[i] === 1)).map((a) => normalizeAxis('Squeeze', a, x.shape.length));
    for (const a of axes) if (x.shape[a] !== 1) throw new Error(`Squeeze: axis ${a} of ${shapeToString(x.shape)} is not 1`);
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) }];
  },
  vjp: ({ inputs: [x], dy: [g] }) => [reshape(g!, x!.staticShape), undefined],
});

defineOp({
  type: 'Unsqueeze', attrs: {},
  infer: (ctx) => {
    const x = need(ctx, 0);
    const r = x.shape.length;
    const axes = constInts(ctx, 1, 'axes')!.map((a) => normalizeAxis('Unsqueeze', a, r + constInts(ctx, 1, 'axes')!.length));
    const out: Dim[] = [];
    let k = 0;
    for (let i = 0; i < r + axes.length; i++) out.push(axes.includes(i) ? 1 : x.shape[k++]!);
    return [{ dtype: x.dtype, shape: out }];
  },
  vjp: ({ inputs: [x], dy: [g] }) => [reshape(g!, x!.staticShape), undefined],
});

defineOp({
  type: 'ConstantOfShape', attrs: { value: 'tensor' }, nondifferentiable: true,
  infer: (ctx) => {
    const value = ctx.attrs.value;
    const dtype = value && typeof value === 'object' && 'dtype' in value ? value.dtype : 'float32';
    return [{ dtype, shape: constInts(ctx, 0, 'shape')! }];
  },
});

defineOp({
  type: 'ScatterND', attrs: { reduction: 'string' },
  infer: (ctx) => [need(ctx, 0)],
  vjp: ({ inputs: [, indices], dy: [g], attrs }) => {
    if ((attrs.reduction ?? 'none') !== 'add') throw new Error('ScatterND: gradient implemented for reduction = add only');
    return [g, undefined, gatherND(g!, indices!)];
  },
});

defineOp({
  type: 'GatherND', attrs: { batch_dims: 'int' },
  infer: (ctx) => {
    const data = need(ctx, 0);
    const idx = need(ctx, 1);
    if (attrInt(ctx.attrs, 'batch_dims', 0) !== 0) throw new Error('GatherND: batch_dims must be 0');
    const k = idx.shape[idx.shape.length - 1];
    if (typeof k !== 'number') throw new Error('GatherND: last index dim must be static');
    return [{ dtype: data.dtype, shape: [...idx.shape.slice(0, -1), ...data.shape.slice(k)] }];
  },
  vjp: ({ inputs: [data, indices], dy: [g] }) => [scatterNDAdd(zerosLike(data!), indices!, g!), undefined],
});
