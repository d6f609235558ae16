// A graph for training models written by the inference builders: the builders ask for parameters by checkpoint name,
// and the trainer needs trainable weights as graph INPUTS (one cached session for every step), so `param` turns the
// named ones into inputs. `bind` lets a second builder's input (the decoder's `latents`) be a value already computed
// in the same graph (the encoder's reparameterized sample), so encoder and decoder compose unchanged.
import { Graph, type DType, type Shape, type TensorValue, type Value } from '../../onnx/index.ts';

export class TrainableGraph extends Graph {
  private readonly bindings = new Map<string, Value>();

  constructor(
    name: string,
    private readonly trainable: ReadonlySet<string>,
  ) {
    super(name);
  }

  bind(name: string, value: Value): void {
    this.bindings.set(name, value);
  }

  override param(name: string, t: TensorValue): Value {
    if (!this.trainable.has(name)) return super.param(name, t);
    if (t.dtype !== 'float32') throw new Error(`trainable parameter "${name}" must be float32, got ${t.dtype}`);
    return this.input(name, 'float32', t.dims);
  }

  override input(name: string, dtype: DType, shape: Shape): Value {
    const bound = this.bindings.get(name);
    if (!bound) return super.input(name, dtype, shape);
    if (bound.dtype !== dtype || bound.shape.join() !== shape.join()) {
      throw new Error(`input "${name}" is bound to ${bound.toString()}, but ${dtype}[${shape.join(', ')}] was asked for`);
    }
    return bound;
  }
}
