// Tensors as they cross thread boundaries: plain data (type, dims, typed array), never ort.Tensor objects, which
// cannot be posted to a worker.

export interface TensorDataByType {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
  float16: Uint16Array;
}

export type RuntimeTensorType = keyof TensorDataByType;

export interface RuntimeTensor<T extends RuntimeTensorType = RuntimeTensorType> {
  type: T;
  dims: readonly number[];
  data: TensorDataByType[T];
}

export type RuntimeFeeds = Record<string, RuntimeTensor>;
export type RuntimeOutputs = Record<string, RuntimeTensor>;

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

function checked<T extends RuntimeTensorType>(type: T, data: TensorDataByType[T], dims: readonly number[]): RuntimeTensor<T> {
  for (const dim of dims) {
    if (!Number.isInteger(dim) || dim < 0) throw new Error(`tensor: dims must be integers ≥ 0, got [${dims.join(', ')}]`);
  }
  if (data.length !== elementCount(dims)) {
    throw new Error(`tensor: ${type} data has ${data.length} elements but dims [${dims.join(', ')}] need ${elementCount(dims)}`);
  }
  return { type, dims: [...dims], data };
}

export const float32Tensor = (data: Float32Array, dims: readonly number[]) => checked('float32', data, dims);
export const int64Tensor = (data: BigInt64Array, dims: readonly number[]) => checked('int64', data, dims);
export const boolTensor = (data: Uint8Array, dims: readonly number[]) => checked('bool', data, dims);

/** The tensor's data as float32, failing clearly if it holds another type. */
export function float32Data(outputs: RuntimeOutputs, name: string): Float32Array {
  const tensor = outputs[name];
  if (!tensor) throw new Error(`no output named "${name}" (have: ${Object.keys(outputs).join(', ')})`);
  if (tensor.type !== 'float32') throw new Error(`output "${name}" is ${tensor.type}, not float32`);
  return tensor.data as Float32Array;
}
