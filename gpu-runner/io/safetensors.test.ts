import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import {
  SafetensorsFile,
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  loadSafetensors,
  parseSafetensors,
  readSafetensorsHeader,
  serializeSafetensors,
  toFloat32,
  writeSafetensors,
  type Tensor,
} from './safetensors.ts';

const scratch = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Builds a file by hand from a header object and a data section, to exercise malformed inputs. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLength ?? json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

describe('reading the reference fixtures', () => {
  it('reads the rollout header: names, dtypes, shapes, absolute offsets', () => {
    const path = referencePath('sd15-tiny', 'schedulers', 'rollout_PNDMScheduler_5steps.safetensors');
    const header = readSafetensorsHeader(path);
    const bytes = readFileSync(path);
    const declared = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(header.headerLength).toBe(declared);
    expect(header.dataStart).toBe(8 + declared);
    const outputs = header.tensors.find((t) => t.name === 'model_outputs');
    expect(outputs).toMatchObject({ dtype: 'F32', shape: [6, 1, 4, 8, 8], byteLength: 6 * 256 * 4 });
    const timesteps = header.tensors.find((t) => t.name === 'timesteps');
    expect(timesteps).toMatchObject({ dtype: 'I64', shape: [6] });
    // The absolute offset points at the raw data: decode it straight from the file bytes.
    const fromFile = new Float32Array(bytes.buffer.slice(bytes.byteOffset + outputs!.byteOffset, bytes.byteOffset + outputs!.byteOffset + 16));
    const file = SafetensorsFile.open(path);
    expect(Array.from((file.read('model_outputs').data as Float32Array).subarray(0, 4))).toEqual(Array.from(fromFile));
    expect(file.metadata).not.toEqual({});
    file.close();
  });

  it('loads int64 timesteps and float32 weights', () => {
    const rollout = loadSafetensors(referencePath('sd15-tiny', 'schedulers', 'rollout_DDIMScheduler_5steps.safetensors'));
    const timesteps = rollout.tensors.get('timesteps')!;
    expect(timesteps.dtype).toBe('I64');
    expect(Array.from(timesteps.data as BigInt64Array, Number)).toEqual([801, 601, 401, 201, 1]);
    const unet = SafetensorsFile.open(referencePath('sd15-tiny', 'unet', 'diffusion_pytorch_model.safetensors'));
    expect(unet.names).toHaveLength(442);
    expect(unet.info('conv_in.weight').shape).toEqual([8, 4, 3, 3]);
    expect(unet.readFloat32('conv_in.weight')).toHaveLength(8 * 4 * 9);
    unet.close();
  });

  it('round-trips a reference file byte for byte (same writer conventions)', () => {
    const path = referencePath('sd15-tiny', 'text_encoder', 'io.safetensors');
    const original = new Uint8Array(readFileSync(path));
    const { header, tensors } = parseSafetensors(original);
    expect(serializeSafetensors(tensors, header.metadata)).toEqual(original);
  });
});

describe('writing', () => {
  it('sorts names, pads the header to 8 bytes with spaces, keeps metadata', () => {
    const tensors: Record<string, Tensor> = {
      'b.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      'a.ids': { dtype: 'I64', shape: [3], data: new BigInt64Array([1n, -2n, 3n]) },
      'c.half': { dtype: 'F16', shape: [1], data: float32ToFloat16Bits(new Float32Array([0.5])) },
      'd.mask': { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
    };
    const path = join(scratch, 'written.safetensors');
    writeSafetensors(path, tensors, { format: 'pt', note: 'hello' });
    const bytes = new Uint8Array(readFileSync(path));
    const header = readSafetensorsHeader(path);
    expect(header.headerLength % 8).toBe(0);
    expect(header.metadata).toEqual({ format: 'pt', note: 'hello' });
    const json = new TextDecoder().decode(bytes.subarray(8, header.dataStart));
    const closingBrace = json.lastIndexOf('}');
    expect(json.slice(closingBrace + 1)).toMatch(/^ *$/);
    expect(Object.keys(JSON.parse(json)).filter((k) => k !== '__metadata__')).toEqual(['a.ids', 'b.weight', 'c.half', 'd.mask']);
    const loaded = loadSafetensors(path).tensors;
    expect(Array.from(loaded.get('a.ids')!.data as BigInt64Array)).toEqual([1n, -2n, 3n]);
    expect(Array.from(toFloat32(loaded.get('b.weight')!))).toEqual([1, 2, 3, 4]);
    expect(Array.from(toFloat32(loaded.get('c.half')!))).toEqual([0.5]);
    expect(loaded.get('d.mask')!.dtype).toBe('BOOL');
  });

  it('refuses a tensor whose data does not fill its shape', () => {
    expect(() => serializeSafetensors({ x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(
      /"x" has 2 elements but shape \[3\] needs 3/,
    );
  });
});

describe('half-precision conversion', () => {
  it('decodes normal, subnormal, zero, infinity and NaN halves', () => {
    const bits = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7bff]);
    const values = Array.from(float16BitsToFloat32(bits));
    expect(values.slice(0, 6)).toEqual([1, -2, 2 ** -24, -0, Infinity, -Infinity]);
    expect(values[6]).toBeNaN();
    expect(values[7]).toBe(65504);
  });

  it('encodes with round-to-nearest-even and round-trips every finite half', () => {
    const all = new Uint16Array(1 << 16).map((_, i) => i);
    const finite = all.filter((h) => (h & 0x7c00) !== 0x7c00);
    expect(Array.from(float32ToFloat16Bits(float16BitsToFloat32(finite)))).toEqual(Array.from(finite));
    // 1 + 2^-11 lies exactly between 1 and the next half (1 + 2^-10): ties go to the even mantissa (1).
    expect(float32ToFloat16Bits(new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000]))).toEqual(
      new Uint16Array([0x3c00, 0x3c02, 0x7c00]),
    );
  });

  it('decodes bfloat16 as the top half of a float32', () => {
    expect(Array.from(bfloat16BitsToFloat32(new Uint16Array([0x3f80, 0xc040])))).toEqual([1, -3]);
  });
});

describe('malformed files fail with a clear error', () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['too short', new Uint8Array(5), /shorter than the 8-byte header length/],
    ['header length past the end', rawFile({}, new Uint8Array(0), 4096), /runs past the end of the file/],
    ['header length absurd', rawFile({}, new Uint8Array(0), 2 ** 40), /exceeds the 100000000-byte limit/],
    ['not JSON', rawFile('{"a": '), /not valid UTF-8 JSON/],
    ['JSON array', rawFile([1, 2]), /must be an object/],
    ['missing offsets', rawFile({ x: { dtype: 'F32', shape: [1] } }), /"x" has a malformed entry/],
    ['unknown dtype', rawFile({ x: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /unsupported dtype "C64"/],
    [
      'size mismatch',
      rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /"x" spans 4 bytes but F32\[2\] needs 8/,
    ],
    [
      'data past the end',
      rawFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)),
      /"x" ends at data offset 16, past the end/,
    ],
    [
      'overlap',
      rawFile(
        { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
        new Uint8Array(12),
      ),
      /overlap/,
    ],
    ['bad metadata', rawFile({ __metadata__: { n: 3 } }), /__metadata__ must map strings to strings/],
  ];
  for (const [label, bytes, message] of cases) {
    it(label, () => {
      const path = join(scratch, `${label.replace(/ /g, '-')}.safetensors`);
      writeFileSync(path, bytes);
      expect(() => SafetensorsFile.open(path)).toThrow(message);
      expect(() => parseSafetensors(bytes)).toThrow(message);
    });
  }

  it('names the missing tensor', () => {
    const path = join(scratch, 'one.safetensors');
    writeSafetensors(path, { a: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
    const file = SafetensorsFile.open(path);
    expect(() => file.read('b')).toThrow(/no tensor named "b"/);
    file.close();
  });
});
