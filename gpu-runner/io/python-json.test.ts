import { describe, expect, it } from 'vitest';
import { parsePythonJson } from './python-json.ts';

describe('parsePythonJson', () => {
  it('reads Infinity, -Infinity and NaN written by Python', () => {
    const parsed = parsePythonJson('{"a": -Infinity, "b": [Infinity, NaN, 1.5]}') as { a: number; b: number[] };
    expect(parsed.a).toBe(Number.NEGATIVE_INFINITY);
    expect(parsed.b[0]).toBe(Number.POSITIVE_INFINITY);
    expect(parsed.b[1]).toBeNaN();
    expect(parsed.b[2]).toBe(1.5);
  });

  it('leaves the same words inside strings alone', () => {
    expect(parsePythonJson('{"note": "sigma -Infinity NaN \\"Infinity\\""}')).toEqual({ note: 'sigma -Infinity NaN "Infinity"' });
  });

  it('still rejects malformed JSON', () => {
    expect(() => parsePythonJson('{"a": }')).toThrow();
  });
});
