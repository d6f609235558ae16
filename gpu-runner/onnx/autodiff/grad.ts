import type { Graph, Value } from '../ir/graph.ts';
import { prune } from '../ir/prune.ts';
import { sameShape } from '../ir/shape.ts';
import { isFloat, shapeToString, sizeOf, tensor } from '../ir/types.ts';
import { add, identity, zerosLike } from '../ops/elementwise.ts';
import { opDef } from '../ops/registry.ts';
import '../ops/all.ts';

export interface GradOptions {
  /** The scalar (one-element) value to differentiate. */
  readonly loss: string | Value;
  /** Graph inputs or initializers to differentiate with respect to. */
  readonly wrt: readonly (string | Value)[];
  /** Other forward values to expose as outputs (predictions, metrics). */
  readonly extraOutputs?: readonly (string | Value)[];
  /** Output name of the gradient of `name`; default `grad.<name>`. */
  readonly gradName?: (name: string) => string;
  /**
   * Let a gradient come out in the layout its last computing op gave it: a trailing Reshape, Squeeze, Unsqueeze or
   * Flatten (same elements, same order) is left off, so onnxruntime writes the gradient straight into the output
   * buffer instead of copying it through that op (an output cannot alias an intermediate value). For callers that
   * read gradients as flat arrays (the trainer); the output's shape then may differ from the parameter's.
   */
  readonly anyGradientLayout?: boolean;
}

const LAYOUT_ONLY_OPS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten']);

/** `d` without the layout-only ops that end it (the value they were applied to). */
function withoutTrailingLayout(g: Graph, d: Value): Value {
  for (;;) {
    const index = g.producerOf(d.name);
    const node = index === undefined ? undefined : g.nodes[index];
    if (!node || !LAYOUT_ONLY_OPS.has(node.op)) return d;
    d = g.value(node.inputs[0]!);
  }
}

export const defaultGradName = (name: string) => `grad.${name}`;

const nameOf = (v: string | Value) => (typeof v === 'string' ? v : v.name);

/**
 * Reverse-mode differentiation as a graph transformation: returns a new graph whose outputs are the loss, one gradient
 * per `wrt` entry (same order) and the extra outputs. The walk follows tinygrad's `compute_gradient`: visit the nodes
 * between `wrt` and the loss in reverse order, sum the cotangents that reach each output, apply the op's VJP rule.
 */
export function grad(forward: Graph, options: GradOptions): Graph {
  const g = forward.clone(`${forward.name}_grad`);
  g.outputs.length = 0;
  const loss = g.value(nameOf(options.loss));
  if (!isFloat(loss.dtype) || sizeOf(loss.staticShape) !== 1) throw new Error(`grad: loss '${loss.name}' must be a one-element float value, got ${loss.toString()}`);
  const wrt = options.wrt.map((w) => {
    const v = g.value(nameOf(w));
    if (!isFloat(v.dtype)) throw new Error(`grad: cannot differentiate with respect to ${v.toString()} (not a float)`);
    return v;
  });

  // values depending on wrt through differentiable ops
  const active = new Set(wrt.map((v) => v.name));
  const lossIndex = g.producerOf(loss.name) ?? -1;
  const nodes = g.nodes.slice(0, lossIndex + 1);
  for (const node of nodes) {
    if (node.stopGradient || opDef(node.op).nondifferentiable) continue;
    if (!node.inputs.some((i) => active.has(i))) continue;
    for (const o of node.outputs) if (o && isFloat(g.value(o).dtype)) active.add(o);
  }
  // ...that the loss depends on
  const onPath = new Set([loss.name]);
  const relevant: number[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!node.outputs.some((o) => onPath.has(o) && active.has(o))) continue;
    relevant.push(i);
    for (const input of node.inputs) if (active.has(input)) onPath.add(input);
  }

  const contributions = new Map<string, Value[]>();
  const contribute = (name: string, v: Value) => {
    const list = contributions.get(name);
    if (list) list.push(v);
    else contributions.set(name, [v]);
  };
  // fan-out: a value used k times receives k cotangents, summed once when its producer is visited
  const total = (name: string): Value | undefined => {
    const list = contributions.get(name);
    if (!list) return undefined;
    const sum = list.reduce((a, b) => add(a, b));
    contributions.set(name, [sum]);
    return sum;
  };

  contribute(loss.name, g.constant(tensor(loss.dtype, loss.staticShape, new Array<number>(sizeOf(loss.staticShape)).fill(1)), 'seed'));
  for (const i of relevant) {
    const node = nodes[i]!;
    const dy = node.outputs.map((o) => (o ? total(o) : undefined));
    if (dy.every((d) => d === undefined)) continue;
    const def = opDef(node.op);
    if (!def.vjp) throw new Error(`grad: no gradient rule for op '${node.op}' (node '${node.name}'); add a vjp to its entry in the op table`);
    const inputs = node.inputs.map((n) => (n ? g.value(n) : undefined));
    const dx = def.vjp({ g, node, attrs: node.attrs, inputs, outputs: node.outputs.map((o) => g.value(o)), dy });
    inputs.forEach((input, k) => {
      const d = dx[k];
      if (!input || !d || !active.has(input.name)) return;
      if (d.dtype !== input.dtype || !sameShape(d.shape, input.shape)) {
        throw new Error(`grad: the ${node.op} rule returned ${d.dtype}${shapeToString(d.shape)} for input ${input.toString()} (node '${node.name}')`);
      }
      contribute(input.name, d);
    });
  }

  g.output(loss);
  const gradName = options.gradName ?? defaultGradName;
  for (const v of wrt) {
    let d = total(v.name) ?? zerosLike(v);
    if (options.anyGradientLayout) d = withoutTrailingLayout(g, d);
    g.output(d === v ? identity(d) : d, gradName(v.name));
  }
  for (const extra of options.extraOutputs ?? []) g.output(g.value(nameOf(extra)));
  return prune(g);
}
