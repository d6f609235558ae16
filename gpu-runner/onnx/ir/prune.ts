import { Graph } from './graph.ts';

/**
 * A copy of `g` keeping only the nodes its outputs (or the values named in `outputs`, which become the copy's outputs)
 * depend on and the initializers those nodes read. Graph inputs are all kept, so callers' feeds stay valid.
 */
export function prune(g: Graph, outputs: readonly string[] = g.outputs): Graph {
  for (const name of outputs) if (!g.has(name)) throw new Error(`prune: graph '${g.name}' has no value "${name}"`);
  const needed = new Set(outputs);
  const keep: boolean[] = new Array<boolean>(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const node = g.nodes[i]!;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    keep[i] = true;
    for (const input of node.inputs) if (input) needed.add(input);
  }
  const out = new Graph(g.name);
  out.continueNamingAfter(g);
  const declare = (name: string) => {
    if (!out.has(name)) out.declare(name, g.value(name).type);
  };
  for (const name of g.inputs) {
    declare(name);
    out.inputs.push(name);
  }
  for (const [name, t] of g.initializers) {
    if (!needed.has(name)) continue;
    declare(name);
    out.initializers.set(name, t);
  }
  g.nodes.forEach((node, i) => {
    if (!keep[i]) return;
    for (const o of node.outputs) if (o) declare(o);
    out.pushNode(node);
  });
  for (const name of outputs) {
    declare(name);
    out.outputs.push(name);
  }
  return out;
}
