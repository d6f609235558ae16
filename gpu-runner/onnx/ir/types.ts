import { float32ToFloat16Bits } from '../../io/safetensors.ts';

/**
 * Element types the engine emits. float64 exists for gradient checks; float16 for stored weights and the fp16
 * inference graphs (`../../models/precision.ts`).
 */
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'bool' | 'uint8';

/** A dimension: a static size, or a symbolic name (e.g. 'batch') for inference graphs. */
export type Dim = number | string;
export type Shape = readonly Dim[];

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

/** A tensor whose bytes live in memory (initializer or constant attribute). bool is stored as Uint8Array, float16 as raw Uint16Array. */
export interface HostTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: TypedData;
}

/** A tensor stored outside the model protobuf, at `offset` of a file relative to the model's folder (ONNX external data). */
export interface ExternalTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly external: { readonly location: string; readonly offset: number; readonly length: number };
}

export type TensorValue = HostTensor | ExternalTensor;

export function isExternal(t: TensorValue): t is ExternalTensor {
  return 'external' in t;
}

/** TensorProto.DataType numbers from onnx.proto. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

export function dtypeFromOnnx(code: number): DType {
  for (const [name, c] of Object.entries(ONNX_DTYPE)) if (c === code) return name as DType;
  throw new Error(`unsupported ONNX element type ${code}`);
}

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
};

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16';
}

export function sizeOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Allocates typed storage for `count` elements of `dtype`. */
export function allocate(dtype: DType, count: number): TypedData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(count);
    case 'float64':
      return new Float64Array(count);
    case 'float16':
      return new Uint16Array(count);
    case 'int64':
      return new BigInt64Array(count);
    case 'int32':
      return new Int32Array(count);
    case 'bool':
    case 'uint8':
      return new Uint8Array(count);
  }
}

/** Views raw little-endian bytes as typed data (copies when the offset is unaligned). */
export function typedFromBytes(dtype: DType, bytes: Uint8Array): TypedData {
  const width = BYTES_PER_ELEMENT[dtype];
  const aligned = bytes.byteOffset % width === 0 ? bytes : new Uint8Array(bytes); // copy (Buffer.slice would not)
  const count = aligned.byteLength / width;
  switch (dtype) {
    case 'float32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, count);
    case 'float64':
      return new Float64Array(aligned.buffer, aligned.byteOffset, count);
    case 'float16':
      return new Uint16Array(aligned.buffer, aligned.byteOffset, count);
    case 'int64':
      return new BigInt64Array(aligned.buffer, aligned.byteOffset, count);
    case 'int32':
      return new Int32Array(aligned.buffer, aligned.byteOffset, count);
    case 'bool':
    case 'uint8':
      return new Uint8Array(aligned.buffer, aligned.byteOffset, count);
  }
}

export function bytesOf(data: TypedData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Builds a host tensor from plain numbers (int64 values must be exact integers). float16 values are rounded to
 * float32 first, then to the nearest half, ties to even (IEEE 754 binary16: subnormals below 2^-14, infinity past
 * 65504, NaN kept): the conversion fp16 checkpoints are written with (`../../io/safetensors.ts`).
 */
export function tensor(dtype: DType, dims: readonly number[], values: ArrayLike<number> | TypedData): HostTensor {
  const count = sizeOf(dims);
  if (values.length !== count) throw new Error(`tensor: ${values.length} values for shape [${dims.join(', ')}]`);
  const data = allocate(dtype, count);
  if (data instanceof BigInt64Array) {
    for (let i = 0; i < count; i++) data[i] = BigInt(Number((values as ArrayLike<number | bigint>)[i]));
  } else if (dtype === 'float16') {
    (data as Uint16Array).set(float32ToFloat16Bits(Float32Array.from(values as ArrayLike<number>, Number)));
  } else {
    const out = data as Float32Array;
    for (let i = 0; i < count; i++) out[i] = Number((values as ArrayLike<number | bigint>)[i]);
  }
  return { dtype, dims: [...dims], data };
}

export function shapeToString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}
