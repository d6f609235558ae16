import { describe, expect, it } from 'vitest';
import * as E from '../index.ts';

describe('Graph.isRunConstant', () => {
  it('is true for initializers and values computed only from them, false once a graph input is involved', () => {
    const g = new E.Graph('constness');
    const x = g.input('x', 'float32', [2]);
    const w = g.param('w', { dtype: 'float16', dims: [2], data: new Uint16Array([0x3c00, 0x4000]) });
    const folded = E.mul(E.cast(w, 'float32'), 2);
    expect(g.isRunConstant(w)).toBe(true);
    expect(g.isRunConstant(folded)).toBe(true);
    expect(g.isRunConstant(x)).toBe(false);
    expect(g.isRunConstant(E.add(folded, x))).toBe(false);
  });

  it('treats an initializer that is also a graph input as fed, hence not constant', () => {
    const g = new E.Graph('overridable');
    const w = g.param('w', E.tensor('float32', [2], [1, 2]));
    g.inputs.push(w.name);
    expect(g.isRunConstant(E.neg(w))).toBe(false);
  });
});
