// A graph for training models written by the inference builders: the builders ask for parameters by checkpoint name,
// and the trainer needs trainable weights as graph INPUTS (one cached session for every step), so `param` turns the
// named ones into inputs. Builders compose through `Graph.bindInput` (the decoder's `latents` bound to the encoder's
// reparameterized sample).
import { Graph, type TensorValue, type Value } from '../../onnx/index.ts';

export class TrainableGraph extends Graph {
  constructor(
    name: string,
    private readonly trainable: ReadonlySet<string>,
  ) {
    super(name);
  }

  override param(name: string, t: TensorValue): Value {
    if (!this.trainable.has(name)) return super.param(name, t);
    if (t.dtype !== 'float32') throw new Error(`trainable parameter "${name}" must be float32, got ${t.dtype}`);
    return this.input(name, 'float32', t.dims);
  }
}
