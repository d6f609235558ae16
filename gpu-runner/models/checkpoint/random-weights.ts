// A checkpoint of random weights for any inventory, streamed to a safetensors file (full-size SD 1.5 is 3.4 GB at
// fp32, more than one buffer should hold). For timing and memory measurements only: values have torch-like
// magnitudes (weights uniform in ±1/√fan_in as nn.Linear/Conv2d initialise, norm scales 1, small biases) so
// activations stay finite, but they are tiled from one seeded pool, not independent draws.
import { closeSync, openSync, writeSync } from 'node:fs';
import { namedRng, uniform24 } from '../../random/index.ts';
import { numelOf, type ParameterSpec } from '../inventory.ts';

/** Size of the seeded pool of uniform values every tensor is tiled from. */
const POOL_SIZE = 1 << 22;
const BIAS_SCALE = 0.02;
const HEADER_ALIGNMENT = 8;

function initScale(spec: ParameterSpec): number {
  if (spec.shape.length === 1) return spec.name.endsWith('.weight') ? 0 : BIAS_SCALE;
  const fanIn = numelOf(spec.shape.slice(1));
  return 1 / Math.sqrt(fanIn);
}

/** Writes `path` with every parameter of `inventory` as F32; returns the bytes written. */
export function writeRandomCheckpoint(path: string, inventory: readonly ParameterSpec[], seed = 0): number {
  const rng = namedRng(seed, 'random-checkpoint');
  const pool = new Float32Array(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) pool[i] = 2 * uniform24(rng) - 1;

  const header: Record<string, unknown> = { __metadata__: { format: 'pt', note: 'random weights for benchmarks' } };
  let offset = 0;
  for (const spec of inventory) {
    const bytes = numelOf(spec.shape) * Float32Array.BYTES_PER_ELEMENT;
    header[spec.name] = { dtype: 'F32', shape: spec.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const prefix = new Uint8Array(8 + padded).fill(0x20);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  prefix.set(json, 8);

  const fd = openSync(path, 'w');
  try {
    let position = 0;
    const write = (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
      position += bytes.byteLength;
    };
    write(prefix);
    let cursor = 0;
    for (const spec of inventory) {
      const count = numelOf(spec.shape);
      const scale = initScale(spec);
      const data = new Float32Array(count);
      if (scale === 0) data.fill(1);
      else {
        for (let i = 0; i < count; i++) {
          data[i] = pool[cursor]! * scale;
          cursor = cursor + 1 === POOL_SIZE ? 0 : cursor + 1;
        }
        // Start the next tensor elsewhere in the pool so tensors of equal size are not copies of each other.
        cursor = (cursor + (rng.nextUint32() % POOL_SIZE)) % POOL_SIZE;
      }
      write(new Uint8Array(data.buffer));
    }
    return position;
  } finally {
    closeSync(fd);
  }
}
