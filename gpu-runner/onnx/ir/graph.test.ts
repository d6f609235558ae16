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

describe('prune', () => {
  it('keeps what the named values need, makes them the outputs, and keeps every input', () => {
    const g = new E.Graph('branches');
    const x = g.input('x', 'float32', [2]);
    const unused = g.input('unused', 'float32', [2]);
    const w = g.param('w', E.tensor('float32', [2], [1, 2]));
    const kept = E.mul(x, w);
    const dropped = E.exp(E.add(x, g.param('b', E.tensor('float32', [2], [3, 4]))));
    g.output(dropped, 'other');
    const pruned = E.prune(g, [kept.name]);
    expect(pruned.outputs).toEqual([kept.name]);
    expect(pruned.inputs).toEqual([x.name, unused.name]);
    expect(pruned.nodes.map((n) => n.op)).toEqual(['Mul']);
    expect([...pruned.initializers.keys()]).toEqual(['w']);
    expect(g.outputs).toEqual(['other']); // the source graph is left as it was
    expect(() => E.prune(g, ['missing'])).toThrow(/no value "missing"/);
  });
});

describe('Graph.bindInput', () => {
  it('makes a later input of that name the bound value, so two builders compose unchanged', () => {
    const g = new E.Graph('compose');
    const text = E.mul(g.input('ids', 'float32', [1, 3, 4]), 2);
    g.bindInput('context', text);
    expect(g.input('context', 'float32', [1, 3, 4])).toBe(text);
    expect(g.inputs).toEqual(['ids']);
  });

  it('refuses a bound value of another dtype or shape, and a binding after the input was declared', () => {
    const g = new E.Graph('mismatch');
    const v = g.input('v', 'float32', [2]);
    g.bindInput('w', v);
    expect(() => g.input('w', 'float32', [3])).toThrow(/bound to .* but float32\[3\] was asked for/);
    expect(() => g.input('w', 'float16', [2])).toThrow(/bound to/);
    expect(() => g.bindInput('v', E.mul(v, 2))).toThrow(/already declared/);
  });
});
