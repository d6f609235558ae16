/**
 * PCG32 (O'Neill 2014, "PCG: A Family of Simple Fast Space-Efficient Statistically Good Algorithms for Random
 * Number Generation"), variant XSH-RR 64/32 exactly as in the reference `pcg_basic.c` (`pcg32_random_r`,
 * `pcg32_srandom_r`, `pcg32_boundedrand_r`).
 *
 * The 64-bit state is kept as two uint32 halves so every step uses only exact 32-bit integer arithmetic
 * (no BigInt in the hot path): the whole stream is bit-identical to the C reference.
 */

const UINT32 = 0x1_0000_0000;
/** PCG's default 64-bit LCG multiplier 6364136223846793005 = 0x5851F42D_4C957F2D. */
const MULT_HI = 0x5851f42d;
const MULT_LO = 0x4c957f2d;
const UINT64_MASK = (1n << 64n) - 1n;

/** A 64-bit unsigned integer as (hi, lo) uint32 halves. */
export interface U64 {
  readonly hi: number;
  readonly lo: number;
}

/** Accepts a non-negative safe integer or a bigint in [0, 2^64). */
export function toU64(value: number | bigint, what = 'value'): U64 {
  let big: bigint;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`${what} must be a non-negative safe integer or a bigint, got ${value}`);
    }
    big = BigInt(value);
  } else {
    big = value;
  }
  if (big < 0n || big > UINT64_MASK) throw new RangeError(`${what} must fit in 64 unsigned bits, got ${big}`);
  return { hi: Number(big >> 32n), lo: Number(big & 0xffff_ffffn) };
}

export function u64ToBigInt(v: U64): bigint {
  return (BigInt(v.hi) << 32n) | BigInt(v.lo);
}

/** High 32 bits of the exact 64-bit product of two uint32 (16-bit limbs keep every partial product exact). */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + Math.floor(p01 / 0x10000) + Math.floor(p10 / 0x10000) + Math.floor(mid / 0x10000)) >>> 0;
}

/** (a · b) mod 2^64 for 64-bit a, b given as halves. */
export function mul64(aHi: number, aLo: number, bHi: number, bLo: number): U64 {
  const lo = Math.imul(aLo, bLo) >>> 0;
  const hi = (mulHi32(aLo, bLo) + Math.imul(aLo, bHi) + Math.imul(aHi, bLo)) >>> 0;
  return { hi, lo };
}

/** (a + b) mod 2^64. */
export function add64(aHi: number, aLo: number, bHi: number, bLo: number): U64 {
  const sumLo = aLo + bLo;
  const carry = sumLo >= UINT32 ? 1 : 0;
  return { hi: (aHi + bHi + carry) >>> 0, lo: sumLo >>> 0 };
}

export class Pcg32 {
  private stateHi = 0;
  private stateLo = 0;
  private readonly incHi: number;
  private readonly incLo: number;

  /**
   * `pcg32_srandom_r(initstate, initseq)`: state = 0; inc = (initseq << 1) | 1; step; state += initstate; step.
   * Streams differing only in the top bit of `initseq` coincide (the reference shifts it out).
   */
  constructor(initState: number | bigint, initSeq: number | bigint = 0) {
    const seq = u64ToBigInt(toU64(initSeq, 'PCG32 stream (initseq)'));
    const inc = toU64(((seq << 1n) | 1n) & UINT64_MASK);
    this.incHi = inc.hi;
    this.incLo = inc.lo;
    this.nextUint32();
    const init = toU64(initState, 'PCG32 seed (initstate)');
    const s = add64(this.stateHi, this.stateLo, init.hi, init.lo);
    this.stateHi = s.hi;
    this.stateLo = s.lo;
    this.nextUint32();
  }

  /** `pcg32_random_r`: advance the LCG, output XSH-RR of the old state. */
  nextUint32(): number {
    const oldHi = this.stateHi;
    const oldLo = this.stateLo;
    // state = old · MULT + inc (mod 2^64), inlined without allocation (this is the hot path of every draw).
    const lo = Math.imul(oldLo, MULT_LO) >>> 0;
    const hi = (mulHi32(oldLo, MULT_LO) + Math.imul(oldLo, MULT_HI) + Math.imul(oldHi, MULT_LO)) >>> 0;
    const sumLo = lo + this.incLo;
    this.stateLo = sumLo >>> 0;
    this.stateHi = (hi + this.incHi + (sumLo >= UINT32 ? 1 : 0)) >>> 0;
    // xorshifted = uint32(((old >> 18) ^ old) >> 27); rot = old >> 59
    const shHi = oldHi >>> 18;
    const shLo = ((oldLo >>> 18) | (oldHi << 14)) >>> 0;
    const xHi = (shHi ^ oldHi) >>> 0;
    const xLo = (shLo ^ oldLo) >>> 0;
    const xorshifted = ((xLo >>> 27) | (xHi << 5)) >>> 0;
    const rot = oldHi >>> 27;
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  }

  /** `pcg32_boundedrand_r`: unbiased integer in [0, bound) by rejection below (2^32 − bound) mod bound. */
  nextBelow(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 0xffff_ffff) {
      throw new RangeError(`bound must be an integer in [1, 2^32), got ${bound}`);
    }
    const threshold = (UINT32 - bound) % bound;
    for (;;) {
      const r = this.nextUint32();
      if (r >= threshold) return r % bound;
    }
  }

  /** The current (state, inc) pair, for tests and checkpoints of long runs. */
  snapshot(): { state: bigint; inc: bigint } {
    return {
      state: u64ToBigInt({ hi: this.stateHi, lo: this.stateLo }),
      inc: u64ToBigInt({ hi: this.incHi, lo: this.incLo }),
    };
  }
}
