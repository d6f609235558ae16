// Where a graph's weights come from. Parameters become initializers named exactly as in the checkpoint: inline
// float32 data (small models), or external data pointing into the safetensors file itself (no copy; docs/engine.md).
import { type ExternalTensor, type HostTensor, type TensorValue } from '../onnx/index.ts';
import type { ModelWeights } from './checkpoint/weights.ts';
import { formatShape, numelOf, shapesEqual, type TensorShape } from './inventory.ts';

export interface ParamSource {
  /** The tensor for parameter `name`, which must have `shape`; float16 data is widened by a Cast in the graph. */
  tensor(name: string, shape: TensorShape): TensorValue;
}

function checkShape(name: string, actual: TensorShape, expected: TensorShape): void {
  if (!shapesEqual(actual, expected)) {
    throw new Error(`parameter "${name}" is ${formatShape(actual)}, the model needs ${formatShape(expected)}`);
  }
}

/** Copies each parameter into the model as float32 (fine for the tiny models; a full-size model exceeds 2 GB inline). */
export function inlineParams(weights: ModelWeights): ParamSource {
  let cache: Map<string, Float32Array> | null = null;
  return {
    tensor(name, shape) {
      checkShape(name, weights.tensor(name).shape, shape);
      cache ??= weights.readAllFloat32();
      const data = cache.get(name);
      if (!data) throw new Error(`parameter "${name}" is not in the checkpoint`);
      return { dtype: 'float32', dims: [...shape], data } satisfies HostTensor;
    },
  };
}

/** References each parameter inside its safetensors file; the model must be saved in `modelDir` (or above the file). */
export function externalParams(weights: ModelWeights, modelDir: string): ParamSource {
  return {
    tensor(name, shape) {
      const stored = weights.tensor(name);
      checkShape(name, stored.shape, shape);
      return { dtype: stored.dtype, dims: [...shape], external: weights.externalLocation(name, modelDir) } satisfies ExternalTensor;
    },
  };
}

/** Parameters from plain arrays (tests, freshly initialized models). */
export function mapParams(values: ReadonlyMap<string, Float32Array>): ParamSource {
  return {
    tensor(name, shape) {
      const data = values.get(name);
      if (!data) throw new Error(`parameter "${name}" is missing`);
      if (data.length !== numelOf(shape)) throw new Error(`parameter "${name}" has ${data.length} values, ${formatShape(shape)} needs ${numelOf(shape)}`);
      return { dtype: 'float32', dims: [...shape], data } satisfies HostTensor;
    },
  };
}

/**
 * Parameters of the right shapes that point at no real data: for building a graph only to inspect its structure
 * (never to run it), at any size without allocating the weights.
 */
export function placeholderParams(): ParamSource {
  return {
    tensor: (_name, shape) => ({
      dtype: 'float32',
      dims: [...shape],
      external: { location: 'placeholder.bin', offset: 0, length: numelOf(shape) * Float32Array.BYTES_PER_ELEMENT },
    }),
  };
}
