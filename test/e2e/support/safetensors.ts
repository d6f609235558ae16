// A safetensors reader for the tests, written from the format's definition: an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}, then the tensor bytes.
const DTYPE_BYTES: Record<string, number> = { F16: 2, BF16: 2, F32: 4, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface SafetensorsTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

export interface SafetensorsFile {
  readonly metadata: Record<string, string>;
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
}

/** Parses and checks the whole file: every tensor's bytes match its shape and dtype, and they tile the data section. */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) throw new Error('safetensors: shorter than its header length');
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLength > bytes.byteLength) throw new Error('safetensors: header runs past the end of the file');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  const dataLength = bytes.byteLength - 8 - headerLength;
  const tensors = new Map<string, SafetensorsTensor>();
  const spans: [number, number][] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = value as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = DTYPE_BYTES[dtype];
    if (width === undefined) throw new Error(`safetensors: ${name} has unknown dtype ${dtype}`);
    const expected = shape.reduce((a, b) => a * b, 1) * width;
    if (offsets[1] - offsets[0] !== expected) throw new Error(`safetensors: ${name} holds ${offsets[1] - offsets[0]} bytes, its shape needs ${expected}`);
    if (offsets[1] > dataLength) throw new Error(`safetensors: ${name} runs past the end of the file`);
    tensors.set(name, { dtype, shape, byteLength: expected });
    spans.push(offsets);
  }
  spans.sort((a, b) => a[0] - b[0]);
  let cursor = 0;
  for (const [begin, end] of spans) {
    if (begin !== cursor) throw new Error('safetensors: tensor data has gaps or overlaps');
    cursor = end;
  }
  if (cursor !== dataLength) throw new Error('safetensors: bytes after the last tensor');
  return { metadata, tensors };
}
