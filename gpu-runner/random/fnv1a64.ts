import { mul64, type U64, u64ToBigInt } from './pcg32.ts';

/** FNV-1a 64-bit (Fowler–Noll–Vo): offset basis 0xcbf29ce484222325, prime 0x100000001b3, over UTF-8 bytes. */
const OFFSET_HI = 0xcbf29ce4;
const OFFSET_LO = 0x84222325;
const PRIME_HI = 0x00000100;
const PRIME_LO = 0x000001b3;

export function fnv1a64(text: string): U64 {
  const bytes = new TextEncoder().encode(text);
  let hi = OFFSET_HI;
  let lo = OFFSET_LO;
  for (const byte of bytes) {
    lo = (lo ^ byte) >>> 0;
    const p = mul64(hi, lo, PRIME_HI, PRIME_LO);
    hi = p.hi;
    lo = p.lo;
  }
  return { hi, lo };
}

/** A PCG32 stream id derived from a name, so named consumers (one per layer, say) get independent streams. */
export function streamIdFromName(name: string): bigint {
  return u64ToBigInt(fnv1a64(name));
}
