import { describe, expect, it } from 'vitest';
import * as E from '../index.ts';

describe('shape inference and builder errors', () => {
  it('keeps a symbolic batch through broadcasting, reshapes, convolutions and matmuls', () => {
    const g = new E.Graph('sym');
    const x = g.input('x', 'float32', ['batch', 4, 8, 8]);
    const h = E.conv2d(x, g.input('w', 'float32', [6, 4, 3, 3]), undefined, { stride: 2, padding: 1 });
    expect(h.shape).toEqual(['batch', 6, 4, 4]);
    const t = E.reshape(h, ['batch', 6, 16]);
    expect(t.shape).toEqual(['batch', 6, 16]);
    expect(E.matmul(E.transpose(t, [0, 2, 1]), g.input('p', 'float32', [6, 5])).shape).toEqual(['batch', 16, 5]);
    expect(E.add(t, g.input('b', 'float32', [16])).shape).toEqual(['batch', 6, 16]);
    expect(E.reshape(t, [-1, 6, 4, 4]).shape).toEqual(['batch', 6, 4, 4]);
    expect(E.upsampleNearest(h).shape).toEqual(['batch', 6, 8, 8]);
    expect(E.concat([t, t], 0).shape).toEqual(['batch+batch', 6, 16]);
  });

  it('names the op and the shapes when shapes do not fit', () => {
    const g = new E.Graph('bad');
    const a = g.input('a', 'float32', [2, 3]);
    expect(() => E.matmul(a, g.input('b', 'float32', [4, 5]))).toThrow('MatMul: inner dims differ, [2, 3] × [4, 5]');
    expect(() => E.add(a, g.input('c', 'float32', [4]))).toThrow('Add: shapes [2, 3] and [4] do not broadcast');
    expect(() => E.add(g.input('s', 'float32', ['batch', 3]), g.input('t', 'float32', ['other', 3]))).toThrow(/do not broadcast/);
    expect(() => E.reshape(a, [4, 2])).toThrow(/different size/);
    expect(() => E.conv2d(g.input('x', 'float32', [1, 3, 5, 5]), g.input('w', 'float32', [2, 4, 3, 3]))).toThrow(/input channels 3/);
    expect(() => E.add(a, g.input('i', 'int64', [2, 3]))).toThrow(/dtypes differ/);
    expect(() => E.split(a, [1, 1], 1)).toThrow(/do not add up/);
  });

  it('checks attributes against the op table', () => {
    const g = new E.Graph('attrs');
    const a = g.input('a', 'float32', [2, 3]);
    expect(() => E.emit1('Transpose', [a], { perm: [1.5, 0] })).toThrow("Transpose: attribute 'perm' must be ints");
    expect(() => E.emit1('Softmax', [a], { axes: 1 })).toThrow("Softmax: unknown attribute 'axes'");
    expect(() => E.emit1('NoSuchOp', [a])).toThrow("op 'NoSuchOp' is not in the engine's op table");
  });

  it('refuses values from another graph and duplicate names', () => {
    const g = new E.Graph('one');
    const h = new E.Graph('two');
    const a = g.input('a', 'float32', [2]);
    expect(() => E.add(a, h.input('b', 'float32', [2]))).toThrow(/belongs to graph 'two'/);
    expect(() => g.input('a', 'float32', [2])).toThrow(/already has a value named 'a'/);
  });

  it('reading a model with an op outside the table fails naming it', () => {
    const g = new E.Graph('m');
    g.output(E.neg(g.input('x', 'float32', [2])), 'y');
    const model = E.decodeModel(E.serializeModel(g));
    model.graph!.node![0]!.opType = 'Softplus';
    expect(() => E.fromModelProto(model)).toThrow("op 'Softplus' is not in the engine's op table");
  });
});
