/**
 * Natural logarithm from IEEE-754 binary64 +, −, ×, ÷ only, in a fixed order, so it returns the same bits in every
 * language (Math.log and libm differ by an ulp between platforms; this must not). Accuracy: within a few ulp of ln.
 *
 * Algorithm: x = m · 2^e with m in [√½, √2] (exact); t = (m − 1)/(m + 1); ln m = 2t · Σ_{k=0..12} t^{2k}/(2k + 1)
 * (the atanh series; |t| ≤ 0.1716 so t² ≤ 0.0295 and the 13 terms reach below 1e−20), evaluated by Horner in t²
 * from k = 12 down to 0 with coefficients c_k = 1/(2k + 1) rounded once; ln x = e · LN2 + (2t) · p.
 */

const SERIES_TERMS = 13;
const COEFFS: readonly number[] = Array.from({ length: SERIES_TERMS }, (_, k) => 1 / (2 * k + 1));
/** ln 2 rounded to binary64 (0x3FE62E42FEFA39EF). */
const LN2 = 0.6931471805599453;
/** √2 rounded to binary64 (0x3FF6A09E667F3BCD). */
const SQRT2 = 1.4142135623730951;
/** Scale for subnormal inputs: 2^54. */
const TWO_POW_54 = 18_014_398_509_481_984;

const view = new DataView(new ArrayBuffer(8));

export function deterministicLog(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`deterministicLog needs a positive finite number, got ${x}`);
  let e = 0;
  let y = x;
  if (y < 2.2250738585072014e-308) {
    y *= TWO_POW_54;
    e -= 54;
  }
  view.setFloat64(0, y);
  const hi = view.getUint32(0);
  const biased = (hi >>> 20) & 0x7ff;
  e += biased - 1023;
  // Set the exponent field to 1023: m in [1, 2), exact.
  view.setUint32(0, (hi & 0x800fffff) | (1023 << 20));
  let m = view.getFloat64(0);
  if (m > SQRT2) {
    m /= 2;
    e += 1;
  }
  const t = (m - 1) / (m + 1);
  const t2 = t * t;
  let p = COEFFS[SERIES_TERMS - 1]!;
  for (let k = SERIES_TERMS - 2; k >= 0; k--) p = p * t2 + COEFFS[k]!;
  return e * LN2 + 2 * t * p;
}
