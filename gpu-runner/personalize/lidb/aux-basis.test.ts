import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { auxDownScale, generateAuxBasis } from './aux-basis.ts';
import { lidbDelta, lidbToLora, matmulF32 } from './delta.ts';
import { orthonormalizeRows } from './orthonormalize.ts';
import { LIDB_ALGORITHM_VERSION } from './settings.ts';

const summarySchema = z.object({ first: z.array(z.number()), sha256_f32le: z.string(), frobenius: z.number() });
const goldenSchema = z.object({
  algorithm: z.string(),
  a: z.number(),
  b: z.number(),
  cases: z.array(
    z.object({
      seed: z.number(),
      name: z.string(),
      in: z.number(),
      out: z.number(),
      aEff: z.number(),
      bEff: z.number(),
      A_aux: summarySchema,
      B_aux: summarySchema,
    }),
  ),
});
// Written by reference_impl.py (pure Python, binary64): the TypeScript bases must match it bit for bit.
const golden = goldenSchema.parse(JSON.parse(readFileSync(new URL('./golden-aux-bases.json', import.meta.url), 'utf8')));

function sha256(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

function frobenius(values: Float32Array): number {
  let s = 0;
  for (const v of values) s += v * v;
  return Math.sqrt(s);
}

/** max |M·Mᵀ − c·I| for row-major M [rows, cols]. */
function gramError(m: Float32Array, rows: number, cols: number, c: number): number {
  let worst = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < rows; j++) {
      let d = 0;
      for (let k = 0; k < cols; k++) d += m[i * cols + k]! * m[j * cols + k]!;
      worst = Math.max(worst, Math.abs(d - (i === j ? c : 0)));
    }
  }
  return worst;
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j]!;
  return t;
}

describe('LiDB aux bases', () => {
  it('rebuild the golden vectors of the Python reference bit for bit', () => {
    expect(golden.algorithm).toBe(LIDB_ALGORITHM_VERSION);
    for (const c of golden.cases) {
      const basis = generateAuxBasis(c.seed, { name: c.name, inFeatures: c.in, outFeatures: c.out }, golden.a, golden.b);
      expect([basis.aEff, basis.bEff]).toEqual([c.aEff, c.bEff]);
      expect(Array.from(basis.aAux.subarray(0, 4))).toEqual(c.A_aux.first);
      expect(Array.from(basis.bAux.subarray(0, 4))).toEqual(c.B_aux.first);
      expect(sha256(basis.aAux)).toBe(c.A_aux.sha256_f32le);
      expect(sha256(basis.bAux)).toBe(c.B_aux.sha256_f32le);
      expect(frobenius(basis.aAux)).toBeCloseTo(c.A_aux.frobenius, 9);
      expect(frobenius(basis.bAux)).toBeCloseTo(c.B_aux.frobenius, 9);
    }
  });

  it('A_aux has orthogonal rows of norm sqrt(in / a) and B_aux orthonormal columns', () => {
    const layer = { name: 'unet.x.attn2.to_k', inFeatures: 768, outFeatures: 320 };
    const { aAux, bAux, aEff, bEff } = generateAuxBasis(3, layer, 100, 50);
    const scale = auxDownScale(768, 100);
    // float32 rounding of each entry bounds the Gram error at ~1e-7 relative.
    expect(gramError(aAux, aEff, 768, scale * scale)).toBeLessThan(1e-5 * scale * scale);
    expect(gramError(transpose(bAux, 320, bEff), bEff, 320, 1)).toBeLessThan(1e-5);
  });

  it('uses min(a, in) and min(b, out) for narrow layers, where A_aux becomes an orthogonal (square) matrix', () => {
    const basis = generateAuxBasis(1, { name: 'tiny', inFeatures: 8, outFeatures: 16 }, 100, 50);
    expect([basis.aEff, basis.bEff, basis.aAux.length, basis.bAux.length]).toEqual([8, 16, 64, 256]);
    expect(gramError(basis.aAux, 8, 8, 1)).toBeLessThan(1e-6);
  });

  it('depends on seed and layer name only, deterministically', () => {
    const layer = { name: 'unet.a', inFeatures: 40, outFeatures: 24 };
    const first = generateAuxBasis(5, layer, 16, 8);
    expect(generateAuxBasis(5, layer, 16, 8).aAux).toEqual(first.aAux);
    expect(generateAuxBasis(6, layer, 16, 8).aAux).not.toEqual(first.aAux);
    expect(generateAuxBasis(5, { ...layer, name: 'unet.b' }, 16, 8).aAux).not.toEqual(first.aAux);
  });

  it('rejects invalid shapes with a message naming the layer', () => {
    expect(() => generateAuxBasis(0, { name: 'bad', inFeatures: 0, outFeatures: 4 }, 4, 4)).toThrow(/bad: inFeatures/);
    expect(() => orthonormalizeRows(new Float64Array(6), 3, 2)).toThrow(/rows ≤ cols/);
    expect(() => orthonormalizeRows(new Float64Array(4), 2, 2)).toThrow(/linearly dependent/);
  });
});

describe('LiDB ΔW', () => {
  const layer = { name: 'text_encoder.l0.q_proj', inFeatures: 24, outFeatures: 20 };
  const basis = generateAuxBasis(11, layer, 10, 6);
  const rank = 2;
  const aTrain = Float32Array.from({ length: rank * basis.aEff }, (_, i) => Math.sin(i + 1));
  const bTrain = Float32Array.from({ length: basis.bEff * rank }, (_, i) => Math.cos(i * 0.7));

  it('equals B_aux·B_train·A_train·A_aux computed in another association order', () => {
    const delta = lidbDelta(basis, { aTrain, bTrain }, rank);
    const inner = matmulF32(bTrain, aTrain, basis.bEff, rank, basis.aEff);
    const expected = matmulF32(matmulF32(basis.bAux, inner, 20, basis.bEff, basis.aEff), basis.aAux, 20, basis.aEff, 24);
    for (let i = 0; i < delta.length; i++) expect(delta[i]).toBeCloseTo(expected[i]!, 5);
  });

  it('is a rank-r LoRA pair after multiplying out, and zero when either factor is zero', () => {
    const lora = lidbToLora(basis, { aTrain, bTrain }, rank);
    expect([lora.down.length, lora.up.length]).toEqual([rank * 24, 20 * rank]);
    const zero = lidbDelta(basis, { aTrain, bTrain: new Float32Array(bTrain.length) }, rank);
    expect(zero.every((v) => v === 0)).toBe(true);
  });

  it('rejects trainable factors of the wrong size', () => {
    expect(() => lidbDelta(basis, { aTrain: new Float32Array(3), bTrain }, rank)).toThrow(/A_train needs \[2, 10\]/);
  });
});
