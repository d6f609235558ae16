// float16 constants from plain numbers: `tensor`, `graph.scalar` (so `mul(x, 0.5)` on a float16 value) and
// `constantOfShape(…, 'float16')` (group norm's unit scale), which the fp16 inference graphs need.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import * as E from '../index.ts';

const bitsOf = (values: number[]) => Array.from(E.tensor('float16', [values.length], values).data as Uint16Array);

describe('float16 constants', () => {
  it('rounds to the nearest half with ties to even, keeping subnormals, infinity and NaN', () => {
    expect(bitsOf([0, -0, 1, -2, 0.5, 65504])).toEqual([0x0000, 0x8000, 0x3c00, 0xc000, 0x3800, 0x7bff]);
    // 2^-14 is the smallest normal half (0x0400); 6.1e-5 lies just under it and rounds to the largest subnormal,
    // 1023 × 2^-24 ≈ 6.0976e-5 (2.4e-8 away, against 3.5e-8 to 2^-14).
    expect(bitsOf([2 ** -14, 6.1e-5])).toEqual([0x0400, 0x03ff]);
    // The smallest subnormal 2^-24 ≈ 5.96e-8; half of it is a tie and goes to the even neighbour, zero.
    expect(bitsOf([5.96e-8, 2 ** -24, 2 ** -25, 3 * 2 ** -26])).toEqual([0x0001, 0x0001, 0x0000, 0x0001]);
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1); 1 + 3·2^-11 goes up to the even 1 + 2^-9.
    expect(bitsOf([1 + 2 ** -11, 1 + 3 * 2 ** -11])).toEqual([0x3c00, 0x3c02]);
    // 65520 is halfway between 65504 and 2^16 (past the largest exponent): it and everything above overflow to inf.
    expect(bitsOf([65519, 65520, 70000, -1e6, Infinity, -Infinity])).toEqual([0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7c00, 0xfc00]);
    const nan = bitsOf([Number.NaN])[0]!;
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
  });

  it('gives float16 graphs numeric scalars and ConstantOfShape values that onnxruntime runs', async () => {
    const g = new E.Graph('fp16_constants');
    const x = E.cast(g.input('x', 'float32', [2, 3]), 'float16');
    const ones = E.constantOfShape(g, [2, 3], 1, 'float16');
    g.output(E.cast(E.add(E.mul(x, 0.5), ones), 'float32'), 'y');
    g.output(E.cast(E.mul(x, 0.1), 'float32'), 'tenth');
    const session = await ort.InferenceSession.create(E.serializeModel(g));
    const { y, tenth } = await session.run({ x: new ort.Tensor('float32', Float32Array.of(2, 4, -6, 0.25, 100, 1), [2, 3]) });
    await session.release();
    expect(Array.from(y!.data as Float32Array)).toEqual([2, 3, -2, 1.125, 51, 1.5]);
    // The scalar is stored as the half nearest 0.1, 0x2e66 = 0.0999755859375: the product shows it.
    expect((tenth!.data as Float32Array)[5]).toBe(0.0999755859375);
  });
});
