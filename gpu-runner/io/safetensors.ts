// Reading and writing the safetensors format (https://github.com/huggingface/safetensors, "Format" section):
// 8-byte little-endian u64 header length N, then N bytes of JSON
// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`, then the raw little-endian data.
// `data_offsets` are relative to the first byte after the header, so a tensor's absolute file offset is 8 + N + begin
// (the offset an ONNX external-data entry needs to point into the file without copying it).
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

/** Bytes per element of each dtype the format defines that we support. */
export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** The typed array that holds each dtype's raw elements (F16/BF16 keep their bit patterns; see `toFloat32`). */
export interface DtypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type TensorData = DtypeArrays[SafetensorsDtype];

/** A tensor held in memory: its dtype, shape and a typed array of its elements in row-major order. */
export interface Tensor<D extends SafetensorsDtype = SafetensorsDtype> {
  dtype: D;
  shape: number[];
  data: DtypeArrays[D];
}

/** One header entry, with offsets resolved to absolute positions in the file. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the first element in the file: 8 + header length + data_offsets[0]. */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /** Length N of the JSON header in bytes (the u64 at the start of the file). */
  headerLength: number;
  /** Absolute offset where the data section starts: 8 + N. */
  dataStart: number;
  /** Tensors in file order (ascending offset). */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

/** The spec caps the header at 100 MB so a corrupt length cannot make a reader allocate the whole file. */
export const MAX_HEADER_BYTES = 100_000_000;
const LENGTH_PREFIX_BYTES = 8;
const METADATA_KEY = '__metadata__';
/** Writers pad the header with spaces so the data section starts 8-byte aligned (the reference writer does too). */
const HEADER_ALIGNMENT = 8;

export class SafetensorsError extends Error {
  constructor(source: string, message: string) {
    super(`safetensors ${source}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

const dtypeSchema = z.enum(Object.keys(DTYPE_BYTES) as [SafetensorsDtype, ...SafetensorsDtype[]]);
const entrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});
const metadataSchema = z.record(z.string(), z.string());

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/**
 * Parses the header from the first bytes of a file. `prefix` must hold at least the 8-byte length and the JSON;
 * `fileSize` (when known) lets us check every tensor lies inside the file.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileSize: number, source = '<buffer>'): SafetensorsHeader {
  if (prefix.byteLength < LENGTH_PREFIX_BYTES) {
    throw new SafetensorsError(source, `file is ${prefix.byteLength} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const headerLength64 = view.getBigUint64(0, true);
  if (headerLength64 > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(source, `header length ${headerLength64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerLength = Number(headerLength64);
  const dataStart = LENGTH_PREFIX_BYTES + headerLength;
  if (dataStart > fileSize || dataStart > prefix.byteLength) {
    throw new SafetensorsError(source, `header length ${headerLength} runs past the end of the file (${fileSize} bytes)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(LENGTH_PREFIX_BYTES, dataStart)));
  } catch (error) {
    throw new SafetensorsError(source, `header is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(source, 'header JSON must be an object of tensor entries');
  }

  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  const dataBytes = fileSize - dataStart;
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      const parsed = metadataSchema.safeParse(raw);
      if (!parsed.success) throw new SafetensorsError(source, '__metadata__ must map strings to strings');
      metadata = parsed.data;
      continue;
    }
    const entry = entrySchema.safeParse(raw);
    if (!entry.success) {
      throw new SafetensorsError(source, `tensor "${name}" has a malformed entry (needs dtype, shape, data_offsets)`);
    }
    const dtype = dtypeSchema.safeParse(entry.data.dtype);
    if (!dtype.success) {
      throw new SafetensorsError(source, `tensor "${name}" has unsupported dtype "${entry.data.dtype}"`);
    }
    const [begin, end] = entry.data.data_offsets;
    const expectedBytes = elementCount(entry.data.shape) * DTYPE_BYTES[dtype.data];
    if (end < begin || end - begin !== expectedBytes) {
      throw new SafetensorsError(
        source,
        `tensor "${name}" spans ${end - begin} bytes but ${dtype.data}[${entry.data.shape.join(', ')}] needs ${expectedBytes}`,
      );
    }
    if (end > dataBytes) {
      throw new SafetensorsError(source, `tensor "${name}" ends at data offset ${end}, past the end of the file`);
    }
    tensors.push({
      name,
      dtype: dtype.data,
      shape: entry.data.shape,
      byteOffset: dataStart + begin,
      byteLength: expectedBytes,
    });
  }
  tensors.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  for (let i = 1; i < tensors.length; i++) {
    const previous = tensors[i - 1]!;
    const current = tensors[i]!;
    if (current.byteOffset < previous.byteOffset + previous.byteLength) {
      throw new SafetensorsError(source, `tensors "${previous.name}" and "${current.name}" overlap`);
    }
  }
  return { headerLength, dataStart, tensors, metadata };
}

/** Views `bytes` (a fresh, aligned copy) as the typed array of `dtype`. */
function typedArrayOf<D extends SafetensorsDtype>(dtype: D, bytes: Uint8Array): DtypeArrays[D] {
  const { buffer, byteOffset, byteLength } = bytes;
  const length = byteLength / DTYPE_BYTES[dtype];
  const arrays: { [K in SafetensorsDtype]: () => DtypeArrays[K] } = {
    F64: () => new Float64Array(buffer, byteOffset, length),
    F32: () => new Float32Array(buffer, byteOffset, length),
    F16: () => new Uint16Array(buffer, byteOffset, length),
    BF16: () => new Uint16Array(buffer, byteOffset, length),
    I64: () => new BigInt64Array(buffer, byteOffset, length),
    I32: () => new Int32Array(buffer, byteOffset, length),
    I16: () => new Int16Array(buffer, byteOffset, length),
    I8: () => new Int8Array(buffer, byteOffset, length),
    U8: () => new Uint8Array(buffer, byteOffset, length),
    BOOL: () => new Uint8Array(buffer, byteOffset, length),
  };
  return arrays[dtype]() as DtypeArrays[D];
}

/** Copies `length` bytes from `source` into a fresh ArrayBuffer, so typed-array views are always aligned. */
function alignedCopy(source: Uint8Array, begin: number, length: number): Uint8Array {
  const copy = new Uint8Array(length);
  copy.set(source.subarray(begin, begin + length));
  return copy;
}

/** A safetensors file opened for reading: the header is parsed once, tensors are read on demand (no whole-file load). */
export class SafetensorsFile {
  readonly header: SafetensorsHeader;
  private readonly byName: Map<string, TensorInfo>;
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    header: SafetensorsHeader,
  ) {
    this.fd = fd;
    this.header = header;
    this.byName = new Map(header.tensors.map((info) => [info.name, info]));
  }

  static open(path: string): SafetensorsFile {
    const fd = openSync(path, 'r');
    try {
      const fileSize = fstatSync(fd).size;
      const lengthBytes = new Uint8Array(LENGTH_PREFIX_BYTES);
      const got = readSync(fd, lengthBytes, 0, LENGTH_PREFIX_BYTES, 0);
      if (got < LENGTH_PREFIX_BYTES) parseSafetensorsHeader(lengthBytes.subarray(0, got), fileSize, path);
      const declared = new DataView(lengthBytes.buffer).getBigUint64(0, true);
      const prefixLength = Math.min(fileSize, LENGTH_PREFIX_BYTES + Number(BigInt.asUintN(53, declared)));
      const prefix = new Uint8Array(Math.min(prefixLength, LENGTH_PREFIX_BYTES + MAX_HEADER_BYTES));
      readSync(fd, prefix, 0, prefix.byteLength, 0);
      return new SafetensorsFile(path, fd, parseSafetensorsHeader(prefix, fileSize, path));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  get names(): string[] {
    return this.header.tensors.map((info) => info.name);
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new SafetensorsError(this.path, `no tensor named "${name}"`);
    return info;
  }

  /** Reads one tensor's bytes from disk into a fresh typed array. */
  read(name: string): Tensor {
    const info = this.info(name);
    if (this.fd === null) throw new SafetensorsError(this.path, 'file is closed');
    const bytes = new Uint8Array(info.byteLength);
    let done = 0;
    while (done < info.byteLength) {
      const got = readSync(this.fd, bytes, done, info.byteLength - done, info.byteOffset + done);
      if (got === 0) throw new SafetensorsError(this.path, `file ended while reading "${name}"`);
      done += got;
    }
    return { dtype: info.dtype, shape: [...info.shape], data: typedArrayOf(info.dtype, bytes) };
  }

  /** Reads one tensor and converts it to float32 (F16/BF16/F64/integers), the form the runtime computes in. */
  readFloat32(name: string): Float32Array {
    return toFloat32(this.read(name));
  }

  readAll(): Map<string, Tensor> {
    return new Map(this.names.map((name) => [name, this.read(name)]));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads only the header of a file (cheap even for multi-GB checkpoints). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const file = SafetensorsFile.open(path);
  file.close();
  return file.header;
}

/** Loads every tensor of a file into memory. */
export function loadSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const file = SafetensorsFile.open(path);
  try {
    return { tensors: file.readAll(), metadata: file.metadata };
  } finally {
    file.close();
  }
}

/** Parses a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): {
  header: SafetensorsHeader;
  tensors: Map<string, Tensor>;
} {
  const header = parseSafetensorsHeader(bytes, bytes.byteLength, source);
  const tensors = new Map<string, Tensor>();
  for (const info of header.tensors) {
    const data = typedArrayOf(info.dtype, alignedCopy(bytes, info.byteOffset, info.byteLength));
    tensors.set(info.name, { dtype: info.dtype, shape: [...info.shape], data });
  }
  return { header, tensors };
}

// IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
const F16_EXPONENT_MASK = 0x7c00;
const F16_MANTISSA_MASK = 0x03ff;
const F16_MANTISSA_SCALE = 2 ** -24; // a subnormal's value is mantissa × 2^-24

/** Converts IEEE half-precision bit patterns to float32 values (exact: every f16 value is representable in f32). */
export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const table = halfTable();
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

let halfLookup: Float32Array | null = null;
/** All 65536 half values, built once: a lookup is much faster than decoding per element for large checkpoints. */
function halfTable(): Float32Array {
  if (halfLookup) return halfLookup;
  const table = new Float32Array(1 << 16);
  for (let h = 0; h < 1 << 16; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h & F16_EXPONENT_MASK) >> 10;
    const mantissa = h & F16_MANTISSA_MASK;
    if (exponent === 0) table[h] = sign * mantissa * F16_MANTISSA_SCALE;
    else if (exponent === 0x1f) table[h] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[h] = sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
  }
  halfLookup = table;
  return table;
}

/** Converts float32 values to half-precision bits with round-to-nearest-even (for writing fp16 checkpoints). */
export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i]!;
    const x = u32[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    let mantissa = x & 0x7fffff;
    if (exponent === 0xff) {
      out[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0);
      continue;
    }
    const e = exponent - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mantissa |= 0x800000;
      const shift = 14 - e;
      let half = mantissa >>> shift;
      const remainder = mantissa & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (remainder > halfway || (remainder === halfway && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mantissa >>> 13);
    const remainder = mantissa & 0x1fff;
    if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half++;
    // A carry out of the mantissa bumps the exponent, and past the largest exponent gives infinity: both correct.
    out[i] = sign | half;
  }
  return out;
}

/** bfloat16 is the top half of a float32. */
export function bfloat16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

/** Any tensor's values as float32 (integers and booleans converted by value). */
export function toFloat32(tensor: Tensor): Float32Array {
  switch (tensor.dtype) {
    case 'F32':
      return tensor.data as Float32Array;
    case 'F16':
      return float16BitsToFloat32(tensor.data as Uint16Array);
    case 'BF16':
      return bfloat16BitsToFloat32(tensor.data as Uint16Array);
    case 'I64':
      return Float32Array.from(tensor.data as BigInt64Array, (value) => Number(value));
    default:
      return Float32Array.from(tensor.data as Exclude<TensorData, BigInt64Array>);
  }
}

/** Any tensor's values as float64 (what the schedulers compute in). */
export function toFloat64(tensor: Tensor): Float64Array {
  switch (tensor.dtype) {
    case 'I64':
      return Float64Array.from(tensor.data as BigInt64Array, (value) => Number(value));
    case 'F16':
    case 'BF16':
      return Float64Array.from(toFloat32(tensor));
    default:
      return Float64Array.from(tensor.data as Exclude<TensorData, BigInt64Array>);
  }
}

/** Shorthand for building a float32 tensor to write. */
export function float32Tensor(shape: number[], data: Float32Array): Tensor<'F32'> {
  return { dtype: 'F32', shape, data };
}

function checkTensorForWrite(name: string, tensor: Tensor): void {
  if (name === METADATA_KEY) throw new SafetensorsError('<write>', `"${METADATA_KEY}" is reserved and cannot name a tensor`);
  const expected = elementCount(tensor.shape);
  if (tensor.data.length !== expected) {
    throw new SafetensorsError(
      '<write>',
      `tensor "${name}" has ${tensor.data.length} elements but shape [${tensor.shape.join(', ')}] needs ${expected}`,
    );
  }
  const bytesPerElement = tensor.data.BYTES_PER_ELEMENT;
  if (bytesPerElement !== DTYPE_BYTES[tensor.dtype]) {
    throw new SafetensorsError('<write>', `tensor "${name}" data does not hold ${tensor.dtype} elements`);
  }
}

/**
 * Serializes tensors to the safetensors format: entries sorted by name, contiguous offsets, header padded with spaces
 * to a multiple of 8 bytes, `__metadata__` included when non-empty.
 */
export function serializeSafetensors(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, tensor] of entries) {
    checkTensorForWrite(name, tensor);
    const byteLength = tensor.data.byteLength;
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  const json = new TextEncoder().encode(JSON.stringify(header));
  const paddedLength = Math.ceil(json.byteLength / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const out = new Uint8Array(LENGTH_PREFIX_BYTES + paddedLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(paddedLength), true);
  out.set(json, LENGTH_PREFIX_BYTES);
  out.fill(0x20, LENGTH_PREFIX_BYTES + json.byteLength, LENGTH_PREFIX_BYTES + paddedLength);
  let cursor = LENGTH_PREFIX_BYTES + paddedLength;
  for (const [, tensor] of entries) {
    out.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), cursor);
    cursor += tensor.data.byteLength;
  }
  return out;
}

export function writeSafetensors(
  path: string,
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  metadata: Record<string, string> = {},
): void {
  writeFileSync(path, serializeSafetensors(tensors, metadata));
}
