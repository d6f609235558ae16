import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../jobs/executor.ts';
import { decodeInlineBlob, sha256Hex } from './blobs.ts';

const inline = (bytes: Uint8Array, text = Buffer.from(bytes).toString('base64')) => ({ data_base64: text, sha256: sha256Hex(bytes), byte_size: bytes.length });
const MAX = 1 << 20;

describe('decodeInlineBlob', () => {
  it('decodes what encoders write, checking size and hash', () => {
    for (const length of [1, 2, 3, 4, 1000, 30_001]) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 37 + 11) % 256);
      expect(decodeInlineBlob(inline(bytes), 'weights', MAX)).toEqual(bytes);
    }
  });

  it('refuses text that is not base64, even where it would decode to the promised bytes', () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => i % 256);
    const text = Buffer.from(bytes).toString('base64');
    // Node's decoder skips a space or a stray character; the declared hash alone would not notice.
    for (const bad of [`${text.slice(0, 100)} ${text.slice(101)}`, `${text.slice(0, 8)}!${text.slice(9)}`, `${text.slice(0, -4)}A=A=`, text.slice(1)]) {
      expect(() => decodeInlineBlob(inline(bytes, bad), 'weights', MAX)).toThrow(/not valid base64/);
    }
  });

  it('still accepts base64 with non-zero padding bits (not what encoders write, but valid before too)', () => {
    expect(decodeInlineBlob(inline(new Uint8Array([0]), 'AB=='), 'weights', MAX)).toEqual(new Uint8Array([0]));
  });

  it('refuses a wrong hash, a wrong size and a size over the limit', () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5]);
    expect(() => decodeInlineBlob({ ...inline(bytes), sha256: sha256Hex(new Uint8Array([9])) }, 'weights', MAX)).toThrow(/SHA-256/);
    expect(() => decodeInlineBlob({ ...inline(bytes), byte_size: 6 }, 'weights', MAX)).toThrow(/6 declared/);
    expect(() => decodeInlineBlob(inline(bytes), 'weights', 4)).toThrow(InvalidInputError);
  });
});
