import { describe, expect, it } from 'vitest';
import * as E from '../index.ts';
import { defineOp } from '../ops/registry.ts';
import { runGraph } from '../testing/ort.ts';

const f64 = (dims: number[], values: number[]) => E.tensor('float64', dims, values);
const values = (t: E.HostTensor | undefined) => Array.from(t!.data as Float64Array);

describe('grad', () => {
  it('accumulates cotangents where a value fans out: d/dx Σ(x·x + sin x + x) = 2x + cos x + 1', async () => {
    const g = new E.Graph('fanout');
    const x = g.input('x', 'float64', [3]);
    g.output(E.reduceSum(E.add(E.add(E.mul(x, x), E.sin(x)), x)), 'loss');
    const out = await runGraph(E.grad(g, { loss: 'loss', wrt: ['x'] }), { x: f64([3], [0.5, -1, 2]) });
    values(out['grad.x']).forEach((v, i) => expect(v).toBeCloseTo([0.5, -1, 2].map((a) => 2 * a + Math.cos(a) + 1)[i]!, 12));
  });

  it('stopGradient blocks the flow: d/dx Σ x·stop(x) = x', async () => {
    const g = new E.Graph('stop');
    const x = g.input('x', 'float64', [2]);
    g.output(E.reduceSum(E.mul(x, E.stopGradient(x))), 'loss');
    const out = await runGraph(E.grad(g, { loss: 'loss', wrt: [x] }), { x: f64([2], [3, -4]) });
    expect(values(out['grad.x'])).toEqual([3, -4]);
  });

  it('reduces over broadcast axes: a bias added to a batch gets the batch sum', async () => {
    const g = new E.Graph('bias');
    const x = g.input('x', 'float64', [2, 3]);
    const b = g.input('b', 'float64', [3]);
    g.output(E.reduceSum(E.mul(E.add(x, b), g.constant(f64([2, 3], [1, 2, 3, 4, 5, 6])))), 'loss');
    const out = await runGraph(E.grad(g, { loss: 'loss', wrt: [b] }), { x: f64([2, 3], [0, 0, 0, 0, 0, 0]), b: f64([3], [0, 0, 0]) });
    expect(values(out['grad.b'])).toEqual([5, 7, 9]);
  });

  it('prunes branches that do not reach the loss, even through ops without rules', async () => {
    defineOp({ type: 'Softplus', attrs: {}, infer: (ctx) => [ctx.inputs[0]!] });
    const g = new E.Graph('prune');
    const x = g.input('x', 'float64', [2]);
    const side = E.emit1('Softplus', [x]);
    g.output(side, 'side');
    g.output(E.reduceSum(E.exp(x)), 'loss');
    const gg = E.grad(g, { loss: 'loss', wrt: [x] });
    expect(gg.nodes.map((n) => n.op)).not.toContain('Softplus');
    expect(gg.outputs).toEqual(['loss', 'grad.x']);
    const out = await runGraph(gg, { x: f64([2], [0, 1]) });
    expect(values(out['grad.x'])).toEqual([1, Math.E].map((v) => expect.closeTo(v, 12)) as unknown as number[]);

    // with the rule-less op on the loss path, the error names it
    const h = new E.Graph('missing');
    const y = h.input('y', 'float64', [2]);
    h.output(E.reduceSum(E.emit1('Softplus', [y])), 'loss');
    expect(() => E.grad(h, { loss: 'loss', wrt: [y] })).toThrow(/no gradient rule for op 'Softplus'/);
  });

  it('returns zeros for parameters the loss does not depend on, and exposes extra outputs', async () => {
    const g = new E.Graph('extras');
    const x = g.input('x', 'float64', [2]);
    const unused = g.input('u', 'float64', [2, 2]);
    const pred = E.mul(x, 2);
    g.output(E.reduceSum(pred), 'loss');
    const gg = E.grad(g, { loss: 'loss', wrt: [x, unused], extraOutputs: [pred], gradName: (n) => `d_${n}` });
    expect(gg.outputs).toEqual(['loss', 'd_x', 'd_u', pred.name]);
    const out = await runGraph(gg, { x: f64([2], [1, 2]), u: f64([2, 2], [1, 1, 1, 1]) });
    expect(values(out.d_u)).toEqual([0, 0, 0, 0]);
    expect(values(out[pred.name])).toEqual([2, 4]);
  });

  it('differentiates with respect to initializers', async () => {
    const g = new E.Graph('init');
    const w = g.param('w', f64([2], [1, -1]));
    const x = g.input('x', 'float64', [2]);
    g.output(E.reduceSum(E.mul(E.mul(w, w), x)), 'loss');
    const out = await runGraph(E.grad(g, { loss: 'loss', wrt: ['w'] }), { x: f64([2], [3, 5]) });
    expect(values(out['grad.w'])).toEqual([6, -10]);
  });

  it('rejects a non-scalar loss and non-float wrt with clear errors', () => {
    const g = new E.Graph('bad');
    const x = g.input('x', 'float64', [2]);
    const i = g.input('i', 'int64', [2]);
    g.output(E.neg(x), 'y');
    expect(() => E.grad(g, { loss: 'y', wrt: [x] })).toThrow(/one-element float/);
    g.output(E.reduceSum(x), 'loss');
    expect(() => E.grad(g, { loss: 'loss', wrt: [i] })).toThrow(/not a float/);
    expect(() => E.grad(g, { loss: 'loss', wrt: ['nope'] })).toThrow(/no value named 'nope'/);
  });

  it('needs static shapes and says which value is symbolic', () => {
    const g = new E.Graph('sym');
    const x = g.input('x', 'float32', ['batch', 3]);
    g.output(E.reduceSum(E.add(x, g.input('b', 'float32', [3]))), 'loss');
    expect(() => E.grad(g, { loss: 'loss', wrt: ['b'] })).toThrow(/symbolic shape \[batch, 3\]/);
  });

  it('differentiates with respect to an intermediate value (activations)', async () => {
    const g = new E.Graph('mid');
    const x = g.input('x', 'float64', [2]);
    const h = E.exp(x);
    g.output(E.reduceSum(E.mul(h, h)), 'loss');
    const out = await runGraph(E.grad(g, { loss: 'loss', wrt: [h] }), { x: f64([2], [0, 1]) });
    expect(values(out[`grad.${h.name}`])).toEqual([2, 2 * Math.E].map((v) => expect.closeTo(v, 12)) as unknown as number[]);
  });

  it('keeps node and value names unique for nodes appended after grad prunes, and after a read', async () => {
    const g = new E.Graph('append');
    let h = g.input('x', 'float64', [2]);
    for (let i = 0; i < 12; i++) h = E.add(E.mul(h, g.input(`s${i}`, 'float64', [1])), 1);
    g.output(E.reduceSum(h), 'loss');
    const names = (graph: E.Graph) => graph.nodes.map((n) => n.name);
    // every renamed output adds an Identity node named by `fresh`: enough of them walk through the numbers that the
    // forward and gradient nodes' names used
    const extend = (graph: E.Graph) => {
      const gradient = graph.value('grad.s0');
      const count = 2 * graph.nodes.length;
      for (let i = 0; i < count; i++) graph.output(gradient, `copy${i}`);
      return graph;
    };
    const trained = extend(E.grad(g, { loss: 'loss', wrt: ['s0'] }));
    const reread = extend(E.readModel(E.serializeModel(E.grad(g, { loss: 'loss', wrt: ['s0'] }))));
    const feeds = Object.fromEntries([['x', f64([2], [1, 2])], ...Array.from({ length: 12 }, (_, i) => [`s${i}`, f64([1], [1])])]);
    for (const graph of [trained, reread]) {
      expect(new Set(names(graph)).size).toBe(graph.nodes.length);
      expect(values((await runGraph(graph, feeds)).copy7)).toEqual([3]);
    }
  });

  it("picks Conv's input-gradient recipe from the output channels per dY position, and flips a constant kernel", () => {
    const recipe = (w: (g: E.Graph) => E.Value, size: number) => {
      const g = new E.Graph('conv_dx');
      const x = g.input('x', 'float32', [1, 4, size, size]);
      g.output(E.reduceSum(E.conv2d(x, w(g), undefined, { padding: 1 })), 'loss');
      const ops = E.grad(g, { loss: 'loss', wrt: [x] }).nodes.map((n) => n.op);
      if (ops.includes('ConvTranspose')) return 'ConvTranspose';
      if (ops.includes('MatMul')) return 'flipped kernel';
      return ops.includes('Slice') ? 'flipped maps' : 'other';
    };
    const trained = (g: E.Graph) => g.input('w', 'float32', [16, 4, 3, 3]);
    const constant = (g: E.Graph) => E.cast(g.param('w', { dtype: 'float16', dims: [16, 4, 3, 3], data: new Uint16Array(576).fill(0x3800) }), 'float32');
    expect(recipe(trained, 5)).toBe('flipped kernel'); // 16 channels, 25 positions
    expect(recipe(trained, 4)).toBe('flipped maps'); // 16 positions
    expect(recipe(trained, 2)).toBe('flipped maps'); // 4 positions: 4 channels per position
    expect(recipe(trained, 1)).toBe('ConvTranspose'); // 1 position
    expect(recipe(constant, 1)).toBe('flipped kernel'); // a constant kernel's flip is folded at session start
  });

  it('leaves the forward graph untouched', () => {
    const g = new E.Graph('pure');
    const x = g.input('x', 'float64', [2]);
    g.output(E.reduceSum(E.tanh(x)), 'loss');
    const before = g.nodes.length;
    E.grad(g, { loss: 'loss', wrt: [x] });
    expect(g.nodes.length).toBe(before);
    expect(g.outputs).toEqual(['loss']);
  });
});
