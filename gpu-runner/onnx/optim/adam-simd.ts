// The Adam/AdamW update as a WebAssembly SIMD loop over parameters and moments kept in WebAssembly memory, for the
// trainer's worker (resident-trainer.ts). Float32 arithmetic four elements at a time (f32x4), the operations and order
// of `adamRange` (adam.ts), which rounds every step to float32: results are bit-for-bit the same (adam-simd.test.ts;
// core WebAssembly has no fused multiply-add to change a rounding). The loop also sums g² in float64 for the gradient
// norm, in `sumOfSquares`'s order (clip.ts), which saves the trainer a pass over the gradients. 19.4M parameters on
// the 2-core CPU machine: 13 ms (28 B per parameter moved: about one core's memory bandwidth, 3 plain copies of the
// same bytes take 12 ms), against 30 ms for the float64 f64x2 loop this replaced, which square roots and divisions
// bound.
// Parameters are views into the module's memory, fed to onnxruntime as they are, and onnxruntime writes the gradients
// into the `grads` views (preallocated outputs). An ordinary ArrayBuffer: onnxruntime-node refuses SharedArrayBuffer-
// backed tensors ("Invalid argument"), which rules out worker threads sharing these arrays without per-step copies.
import { adamCoefficients, adamRange, emaUpdate, float32Coefficients, type AdamCoefficients, type ResolvedAdamConfig } from './adam.ts';
import type { OptimizerState, ParamSet } from './types.ts';

// Node's WebAssembly global (the project's lib, ES2023 without DOM, does not declare it).
interface WasmModule {
  readonly kind?: 'module';
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
};

const PAGE_BYTES = 65536;
/** WebAssembly memories stop at 4 GiB (65536 pages); larger parameter sets keep the JS loop. */
const MAX_PAGES = 65536;
/** Tensor starts are 64-byte aligned inside each region. */
const ALIGN_FLOATS = 16;

// ---------- the module, encoded by hand (no toolchain needed) ----------

const I32 = 0x7f;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (text: string) => [...uleb(text.length), ...[...text].map((ch) => ch.charCodeAt(0))];

// Parameters of `adam(p, g, m, v, pEnd, beta1, beta2, gradientWeight, squareWeight, stepSize, invSqrtBc2, eps,
// decayFactor, l2) -> Σ g²` (byte addresses; four elements per iteration while p < pEnd; float32 coefficients).
const [P, G, M, V, END] = [0, 1, 2, 3, 4];
const FIRST_COEFFICIENT = 5;
const COEFFICIENTS = 9;
// Locals: the nine coefficients splatted to f32x4, then temporaries and the two f64x2 running sums of g².
const SPLAT = FIRST_COEFFICIENT + COEFFICIENTS; // 14..22
const [B1, B2, GW, SW, SS, INV, EPS, DEC, L2] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => SPLAT + i) as [
  number, number, number, number, number, number, number, number, number,
];
const [PI, GI, MI, VI, SQ, ACC01, ACC23] = [23, 24, 25, 26, 27, 28, 29];
const V128_LOCALS = COEFFICIENTS + 7;

const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const simd = (op: number, ...immediates: number[]) => [0xfd, ...uleb(op), ...immediates];
const MEMARG_16 = [4, 0]; // align 2⁴, offset 0
const load4 = (address: number) => [...get(address), ...simd(0x00, ...MEMARG_16)]; // v128.load
const store4 = (address: number, value: number[]) => [...get(address), ...value, ...simd(0x0b, ...MEMARG_16)]; // v128.store
const [ADD, SUB, MUL, DIV, SQRT] = [simd(0xe4), simd(0xe5), simd(0xe6), simd(0xe7), simd(0xe3)]; // f32x4
const [ADD64, MUL64, PROMOTE_LOW] = [simd(0xf0), simd(0xf2), simd(0x5f)]; // f64x2, f64x2.promote_low_f32x4
const HIGH_HALF_LOW = simd(0x0d, ...[8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]); // i8x16.shuffle
const lane = (i: number) => simd(0x21, i); // f64x2.extract_lane
const advance = (address: number) => [...get(address), 0x41, 16, 0x6a, ...set(address)]; // address += 16

/** acc += promoted² of two lanes of g: the products are exact in float64, the additions round as in `sumOfSquares`. */
const accumulate = (acc: number, twoLanes: number[]) => [...get(acc), ...twoLanes, ...tee(SQ), ...get(SQ), ...MUL64, ...ADD64, ...set(acc)];

function kernelBody(): number[] {
  const code: number[] = [];
  for (let i = 0; i < COEFFICIENTS; i++) code.push(...get(FIRST_COEFFICIENT + i), ...simd(0x13), ...set(SPLAT + i)); // f32x4.splat
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  code.push(...get(P), ...get(END), 0x4f, 0x0d, 1); // br_if 1 (exit) when p ≥ pEnd (i32.ge_u)
  code.push(...load4(P), ...set(PI), ...load4(G), ...set(GI));
  // s₀, s₁ from lanes 0–1, s₂, s₃ from lanes 2–3 (v128 locals start at zero)
  code.push(...accumulate(ACC01, [...get(GI), ...PROMOTE_LOW]));
  code.push(...accumulate(ACC23, [...get(GI), ...get(GI), ...HIGH_HALF_LOW, ...PROMOTE_LOW]));
  // gi = g + l2·p
  code.push(...get(GI), ...get(L2), ...get(PI), ...MUL, ...ADD, ...set(GI));
  // m = β₁·m + (1 − β₁)·gi
  code.push(...get(B1), ...load4(M), ...MUL, ...get(GW), ...get(GI), ...MUL, ...ADD, ...set(MI));
  code.push(...store4(M, get(MI)));
  // v = β₂·v + ((1 − β₂)·gi)·gi
  code.push(...get(B2), ...load4(V), ...MUL, ...get(SW), ...get(GI), ...MUL, ...get(GI), ...MUL, ...ADD, ...set(VI));
  code.push(...store4(V, get(VI)));
  // p = p·decay − (stepSize·m) / (√v·(1/√bc2) + eps)
  const denominator = [...get(VI), ...SQRT, ...get(INV), ...MUL, ...get(EPS), ...ADD];
  code.push(...store4(P, [...get(PI), ...get(DEC), ...MUL, ...get(SS), ...get(MI), ...MUL, ...denominator, ...DIV, ...SUB]));
  code.push(...advance(P), ...advance(G), ...advance(M), ...advance(V));
  code.push(0x0c, 0, 0x0b, 0x0b); // br 0 (loop), end loop, end block
  // (s₀ + s₁) + (s₂ + s₃)
  code.push(...get(ACC01), ...lane(0), ...get(ACC01), ...lane(1), 0xa0, ...get(ACC23), ...lane(0), ...get(ACC23), ...lane(1), 0xa0, 0xa0, 0x0b);
  const locals = vec([[...uleb(V128_LOCALS), V128]]);
  return [...uleb(locals.length + code.length), ...locals, ...code];
}

function moduleBytes(): Uint8Array {
  const functionType = [0x60, ...vec([...Array(5).fill([I32]), ...Array(COEFFICIENTS).fill([F32])]), ...vec([[F64]])];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([functionType])),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])), // memory import, min 1 page
    ...section(3, vec([[0]])),
    ...section(7, vec([[...name('adam'), 0x00, 0]])),
    ...section(10, vec([kernelBody()])),
  ]);
}

type Kernel = (p: number, g: number, m: number, v: number, pEnd: number, ...coefficients: number[]) => number;

let compiled: WasmModule | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable (the JS loop is used then). */
function adamModule(): WasmModule | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(moduleBytes());
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

// ---------- parameters, gradients and moments in one memory ----------

const aligned = (n: number) => Math.ceil(n / ALIGN_FLOATS) * ALIGN_FLOATS;

/**
 * Parameters, gradient buffers and the m/v moments of an Adam-family optimizer, each tensor a view into one
 * WebAssembly memory (four regions laid out alike). Construct with `AdamArena.create`; the caller then uses
 * `params`, `m` and `v` in place of its own arrays (they are copied in).
 */
export class AdamArena {
  readonly params: ParamSet = {};
  readonly grads: ParamSet = {};
  readonly m: ParamSet = {};
  readonly v: ParamSet = {};
  private readonly kernel: Kernel;
  /** name → element offset inside each region. */
  private readonly offsets: [string, number, number][] = [];
  private readonly regionBytes: number;

  private constructor(module: WasmModule, lengths: [string, number][], regionFloats: number) {
    this.regionBytes = regionFloats * 4;
    const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil((4 * this.regionBytes) / PAGE_BYTES)) });
    this.kernel = new WebAssembly.Instance(module, { env: { memory } }).exports.adam as Kernel;
    let offset = 0;
    for (const [key, length] of lengths) {
      this.offsets.push([key, offset, length]);
      const view = (region: number) => new Float32Array(memory.buffer, region * this.regionBytes + offset * 4, length);
      [this.params[key], this.grads[key], this.m[key], this.v[key]] = [view(0), view(1), view(2), view(3)];
      offset += aligned(length);
    }
  }

  /** An arena for these parameters and Adam state (copied in), or null when it cannot be made (size, no SIMD). */
  static create(params: ParamSet, state: OptimizerState): AdamArena | null {
    const module = adamModule();
    if (!module) return null;
    const lengths = Object.entries(params).map(([key, p]) => [key, p.length] as [string, number]);
    const regionFloats = lengths.reduce((sum, [, n]) => sum + aligned(n), 0);
    if (Math.ceil((4 * regionFloats * 4) / PAGE_BYTES) > MAX_PAGES) return null;
    const arena = new AdamArena(module, lengths, regionFloats);
    for (const [key] of lengths) {
      arena.params[key]!.set(params[key]!);
      arena.m[key]!.set(state.slots.m![key]!);
      arena.v[key]!.set(state.slots.v![key]!);
    }
    return arena;
  }

  /**
   * One update with the gradients already in `grads` (the caller copies them in), state.step advanced and the EMA
   * slot (if kept) updated as `adamW().update` does. Returns Σ g² over the gradients read, in `globalNorm`'s order.
   */
  step(config: ResolvedAdamConfig, state: OptimizerState, lr: number): number {
    const t = state.step + 1;
    const c = adamCoefficients(config, t, lr);
    const sum = this.update(c);
    if (config.emaDecay !== undefined) emaUpdate(this.params, state.slots.ema!, config.emaDecay, t);
    state.step = t;
    return sum;
  }

  private update(c: AdamCoefficients): number {
    const coefficients = float32Coefficients(c);
    let total = 0;
    for (const [key, offset, length] of this.offsets) {
      const quads = length - (length % 4);
      const byte = offset * 4;
      const r = this.regionBytes;
      let sum = this.kernel(byte, r + byte, 2 * r + byte, 3 * r + byte, byte + quads * 4, ...coefficients);
      if (quads < length) {
        // the last length mod 4 elements in JS: the same arithmetic, and `sumOfSquares`'s order
        const g = this.grads[key]!;
        for (let i = quads; i < length; i++) sum += g[i]! * g[i]!;
        adamRange(this.params[key]!, g, this.m[key]!, this.v[key]!, quads, length, c);
      }
      total += sum;
    }
    return total;
  }
}
