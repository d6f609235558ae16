import type { DType, HostTensor, Shape, TensorType, TensorValue } from './types.ts';
import { isExternal, shapeToString, tensor } from './types.ts';

/** Attribute values as JS data; the op table says whether a number is an ONNX INT or FLOAT. */
export type AttrValue = number | readonly number[] | string | HostTensor;
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface Node {
  readonly op: string;
  readonly name: string;
  /** Value names; '' marks an omitted optional input (ONNX convention). */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Attrs;
  /** Set by `stopGradient`: autodiff treats the node's output as a constant. */
  readonly stopGradient?: boolean;
}

/** A typed value of one graph. Op functions take and return Values; the graph is reachable from each. */
export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly type: TensorType,
  ) {}
  get dtype(): DType {
    return this.type.dtype;
  }
  get shape(): Shape {
    return this.type.shape;
  }
  get rank(): number {
    return this.type.shape.length;
  }
  /** Static shape; throws when a dimension is symbolic (gradients need static shapes). */
  get staticShape(): number[] {
    return this.type.shape.map((d) => {
      if (typeof d !== 'number') throw new Error(`value '${this.name}' has symbolic shape ${shapeToString(this.type.shape)}; a static shape is needed here`);
      return d;
    });
  }
  toString(): string {
    return `${this.name}: ${this.dtype}${shapeToString(this.shape)}`;
  }
}

/**
 * A mutable ONNX graph under construction. Values are named uniquely; nodes are kept in topological order
 * (every op function appends after its inputs exist).
 */
export class Graph {
  readonly nodes: Node[] = [];
  readonly values = new Map<string, Value>();
  readonly inputs: string[] = [];
  readonly outputs: string[] = [];
  readonly initializers = new Map<string, TensorValue>();
  private readonly producers = new Map<string, number>();
  private readonly nodeNames = new Set<string>();
  private readonly boundInputs = new Map<string, Value>();
  private counter = 0;

  constructor(readonly name = 'graph') {}

  /**
   * A graph input (fed at run time). Use string dims such as 'batch' for symbolic sizes. A name bound with
   * `bindInput` returns its bound value instead, after checking that dtype and shape agree.
   */
  input(name: string, dtype: DType, shape: Shape): Value {
    const bound = this.boundInputs.get(name);
    if (bound) {
      if (bound.dtype !== dtype || bound.shape.join() !== shape.join()) {
        throw new Error(`input "${name}" is bound to ${bound.toString()}, but ${dtype}[${shape.join(', ')}] was asked for`);
      }
      return bound;
    }
    const v = this.declare(name, { dtype, shape: [...shape] });
    this.inputs.push(name);
    return v;
  }

  /**
   * Makes a later `input(name, …)` return `value`, a value already computed in this graph, instead of declaring an
   * input: two builders compose unchanged (the UNet's `encoder_hidden_states` becomes the text encoder's output).
   */
  bindInput(name: string, value: Value): void {
    this.assertOwn(value);
    if (this.inputs.includes(name)) throw new Error(`graph '${this.name}': input "${name}" is already declared, bind it before building its consumer`);
    this.boundInputs.set(name, value);
  }

  /** A named initializer (weights). Its data may be in memory or external. */
  param(name: string, t: TensorValue): Value {
    const v = this.declare(name, { dtype: t.dtype, shape: [...t.dims] });
    this.initializers.set(name, t);
    return v;
  }

  /** An anonymous constant initializer (shape vectors, scalars, tables). */
  constant(t: HostTensor, hint = 'const'): Value {
    return this.param(this.fresh(hint), t);
  }

  scalar(value: number, dtype: DType = 'float32'): Value {
    return this.constant(tensor(dtype, [], [value]), 'scalar');
  }

  int64s(values: readonly number[]): Value {
    return this.constant(tensor('int64', [values.length], values), 'ints');
  }

  /** Marks a value as a graph output, optionally under a new name (an Identity node is added then). */
  output(v: Value, name?: string): Value {
    this.assertOwn(v);
    let out = v;
    if (name !== undefined && name !== v.name) {
      if (this.values.has(name)) throw new Error(`output name '${name}' already names a value`);
      out = this.declare(name, v.type);
      this.pushNode({ op: 'Identity', name: this.fresh('Identity'), inputs: [v.name], outputs: [name], attrs: {} });
    }
    if (!this.outputs.includes(out.name)) this.outputs.push(out.name);
    return out;
  }

  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new Error(`graph '${this.name}' has no value named '${name}'`);
    return v;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** Constant data of a value when it is an in-memory initializer that is not also a graph input. */
  constantOf(v: Value | undefined): HostTensor | undefined {
    if (!v) return undefined;
    const t = this.initializers.get(v.name);
    if (!t || isExternal(t) || this.inputs.includes(v.name)) return undefined;
    return t;
  }

  /**
   * Whether a value is the same on every run: an initializer that is not also a graph input, or computed only from
   * such values (onnxruntime folds those at session start, so work on them costs nothing per run).
   */
  isRunConstant(v: Value): boolean {
    const known = new Map<string, boolean>();
    const visit = (name: string): boolean => {
      const seen = known.get(name);
      if (seen !== undefined) return seen;
      let constant: boolean;
      if (this.inputs.includes(name)) constant = false;
      else if (this.initializers.has(name)) constant = true;
      else {
        const index = this.producers.get(name);
        const node = index === undefined ? undefined : this.nodes[index];
        // a node without inputs is constant only when it is a Constant (random ops are not)
        constant = node !== undefined && (node.inputs.length > 0 || node.op === 'Constant') && node.inputs.every((i) => i === '' || visit(i));
      }
      known.set(name, constant);
      return constant;
    };
    this.assertOwn(v);
    return visit(v.name);
  }

  /** Index of the node producing `name`, if any. */
  producerOf(name: string): number | undefined {
    return this.producers.get(name);
  }

  /** A name no value and no node of this graph has (ONNX requires both to be unique). */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.values.has(name) || this.nodeNames.has(name));
    return name;
  }

  /** Continues `source`'s numbering, so names fresh here do not retrace names `source` already handed out. */
  continueNamingAfter(source: Graph): void {
    this.counter = Math.max(this.counter, source.counter);
  }

  /** Low level: appends a node whose outputs have the given types. Op functions call this through `emit`. */
  addNode(op: string, inputs: readonly (Value | undefined)[], attrs: Attrs, outputTypes: readonly TensorType[], options: { outputNames?: readonly string[]; stopGradient?: boolean } = {}): Value[] {
    for (const v of inputs) if (v) this.assertOwn(v);
    const outputs = outputTypes.map((t, i) => this.declare(options.outputNames?.[i] ?? this.fresh(op), t));
    const node: Node = {
      op,
      name: this.fresh(`n_${op}`),
      inputs: inputs.map((v) => v?.name ?? ''),
      outputs: outputs.map((v) => v.name),
      attrs,
      ...(options.stopGradient ? { stopGradient: true } : {}),
    };
    this.pushNode(node);
    return outputs;
  }

  /** Appends an already-formed node (used by the reader and by graph copies). */
  pushNode(node: Node): void {
    this.nodes.push(node);
    if (node.name) this.nodeNames.add(node.name);
    node.outputs.forEach((o) => {
      if (o) this.producers.set(o, this.nodes.length - 1);
    });
  }

  declare(name: string, type: TensorType): Value {
    if (this.values.has(name)) throw new Error(`graph '${this.name}' already has a value named '${name}'`);
    const v = new Value(this, name, type);
    this.values.set(name, v);
    return v;
  }

  /** A deep-enough copy: new node list and value objects, shared tensor data (treated as immutable). */
  clone(name = this.name): Graph {
    const g = new Graph(name);
    for (const [n, v] of this.values) g.declare(n, v.type);
    for (const [n, t] of this.initializers) g.initializers.set(n, t);
    g.inputs.push(...this.inputs);
    g.outputs.push(...this.outputs);
    for (const node of this.nodes) g.pushNode(node);
    g.continueNamingAfter(this);
    return g;
  }

  private assertOwn(v: Value): void {
    if (v.graph !== this) throw new Error(`value '${v.name}' belongs to graph '${v.graph.name}', not '${this.name}'`);
  }
}
