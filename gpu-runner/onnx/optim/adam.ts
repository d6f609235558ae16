import { assertFiniteNonNegative, assertMatchingSets, zerosLike, type Optimizer, type OptimizerState, type ParamSet } from './types.ts';

/** Defaults of Kingma & Ba (2015), Algorithm 1, as used by PyTorch's Adam/AdamW. */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;
/** PyTorch's AdamW default weight decay. */
export const ADAMW_DEFAULT_WEIGHT_DECAY = 0.01;

export interface AdamConfig {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * Adam: L2 penalty added to the gradient (g += wd·p), as in PyTorch `Adam(weight_decay)`.
   * AdamW: decoupled decay p ← p − lr·wd·p applied before the Adam step (Loshchilov & Hutter 2019, Algorithm 2).
   */
  weightDecay?: number;
  /**
   * Also keep an exponential moving average of the parameters in slot `ema` (starting from the initial parameters),
   * updated after every step with diffusers `EMAModel`'s decay min(emaDecay, (1 + t) / (10 + t)), t the step count:
   * the early average is not dominated by the random initialization.
   */
  emaDecay?: number;
}

export interface ResolvedAdamConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupledWeightDecay: boolean;
  /** Present only when an average is kept (configs without it stay byte-identical in checkpoints). */
  emaDecay?: number;
}

const ADAM_SLOTS = ['m', 'v'] as const;
const ADAM_EMA_SLOTS = ['m', 'v', 'ema'] as const;

/** diffusers EMAModel's warm-up-free decay at optimization step `step` (1-based count of updates applied). */
export function emaDecayAt(decay: number, step: number): number {
  return Math.min(decay, (1 + step) / (10 + step));
}

function resolve(config: AdamConfig, decoupled: boolean, defaultDecay: number): ResolvedAdamConfig {
  const resolved = {
    beta1: config.beta1 ?? ADAM_DEFAULTS.beta1,
    beta2: config.beta2 ?? ADAM_DEFAULTS.beta2,
    eps: config.eps ?? ADAM_DEFAULTS.eps,
    weightDecay: config.weightDecay ?? defaultDecay,
    decoupledWeightDecay: decoupled,
    ...(config.emaDecay === undefined ? {} : { emaDecay: config.emaDecay }),
  };
  if (resolved.emaDecay !== undefined && !(resolved.emaDecay >= 0 && resolved.emaDecay < 1)) {
    throw new Error(`adam: emaDecay must be in [0, 1), got ${resolved.emaDecay}`);
  }
  for (const beta of ['beta1', 'beta2'] as const) {
    if (!(resolved[beta] >= 0 && resolved[beta] < 1)) throw new Error(`adam: ${beta} must be in [0, 1), got ${resolved[beta]}`);
  }
  assertFiniteNonNegative('adam: eps', resolved.eps);
  assertFiniteNonNegative('adam: weightDecay', resolved.weightDecay);
  return resolved;
}

/** The per-step scalars of the Adam/AdamW update at 1-based step `t` (shared by the loop below and `adam-simd.ts`). */
export interface AdamCoefficients {
  beta1: number;
  beta2: number;
  gradientWeight: number;
  squareWeight: number;
  stepSize: number;
  inverseSqrtBiasCorrection2: number;
  eps: number;
  decayFactor: number;
  l2: number;
}

export function adamCoefficients(config: ResolvedAdamConfig, t: number, lr: number): AdamCoefficients {
  const { beta1, beta2, eps, weightDecay, decoupledWeightDecay } = config;
  const biasCorrection1 = 1 - beta1 ** t;
  const biasCorrection2 = 1 - beta2 ** t;
  return {
    beta1,
    beta2,
    gradientWeight: 1 - beta1,
    squareWeight: 1 - beta2,
    stepSize: lr / biasCorrection1,
    // Multiplying by 1/√bc2 instead of dividing leaves one division per element: the loop is bound by division and
    // square-root throughput (≈ 2× faster measured), at a cost of at most an ulp in the denominator.
    inverseSqrtBiasCorrection2: 1 / Math.sqrt(biasCorrection2),
    eps,
    decayFactor: decoupledWeightDecay ? 1 - lr * weightDecay : 1,
    l2: decoupledWeightDecay ? 0 : weightDecay,
  };
}

/**
 * The update of elements [from, to) of one tensor, in place, in float32 arithmetic: every operation rounded to float32
 * (`Math.fround`), coefficients included, as PyTorch computes it for float32 parameters. Each +, −, ×, ÷ and √ of
 * float32 operands done in float64 and then rounded gives the correctly rounded float32 result (53 ≥ 2·24 + 2), so
 * a float32 SIMD loop doing the same operations in the same order (adam-simd.ts) matches this one bit for bit.
 */
export function adamRange(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, from: number, to: number, c: AdamCoefficients): void {
  const f = Math.fround;
  const [beta1, beta2, gradientWeight, squareWeight, stepSize, inverseSqrtBiasCorrection2, eps, decayFactor, l2] = float32Coefficients(c);
  for (let i = from; i < to; i++) {
    const pi = p[i]!;
    const gi = f(g[i]! + f(l2 * pi));
    const mi = f(f(beta1 * m[i]!) + f(gradientWeight * gi));
    const vi = f(f(beta2 * v[i]!) + f(f(squareWeight * gi) * gi));
    m[i] = mi;
    v[i] = vi;
    // PyTorch's formulation: p ← p − (lr / bc1) · m / (√v / √bc2 + eps).
    const denominator = f(f(f(Math.sqrt(vi)) * inverseSqrtBiasCorrection2) + eps);
    p[i] = f(f(pi * decayFactor) - f(f(stepSize * mi) / denominator));
  }
}

/** The coefficients rounded to float32, in the order the SIMD kernel takes them. */
export function float32Coefficients(c: AdamCoefficients): [number, number, number, number, number, number, number, number, number] {
  const f = Math.fround;
  return [f(c.beta1), f(c.beta2), f(c.gradientWeight), f(c.squareWeight), f(c.stepSize), f(c.inverseSqrtBiasCorrection2), f(c.eps), f(c.decayFactor), f(c.l2)];
}

/** The EMA slot's update after step `t` (diffusers EMAModel), in place over every tensor. */
export function emaUpdate(params: ParamSet, average: ParamSet, emaDecay: number, t: number): void {
  const decay = emaDecayAt(emaDecay, t);
  for (const [key, p] of Object.entries(params)) {
    const a = average[key]!;
    for (let i = 0; i < p.length; i++) a[i] = decay * a[i]! + (1 - decay) * p[i]!;
  }
}

function makeAdam(name: string, config: ResolvedAdamConfig): Optimizer & { readonly config: ResolvedAdamConfig } {
  const { emaDecay } = config;
  const slotNames = emaDecay === undefined ? ADAM_SLOTS : ADAM_EMA_SLOTS;
  return {
    name,
    config,
    slotNames,
    init: (params) => ({
      step: 0,
      slots: {
        m: zerosLike(params),
        v: zerosLike(params),
        ...(emaDecay === undefined ? {} : { ema: Object.fromEntries(Object.entries(params).map(([k, p]) => [k, Float32Array.from(p)])) }),
      },
    }),
    update(params: ParamSet, grads: ParamSet, state: OptimizerState, lr: number) {
      assertMatchingSets(params, grads, state, slotNames);
      const t = state.step + 1;
      const c = adamCoefficients(config, t, lr);
      for (const [key, p] of Object.entries(params)) adamRange(p, grads[key]!, state.slots.m![key]!, state.slots.v![key]!, 0, p.length, c);
      if (emaDecay !== undefined) emaUpdate(params, state.slots.ema!, emaDecay, t);
      state.step = t;
    },
  };
}

/** Adam (Kingma & Ba 2015) with optional coupled L2 weight decay. */
export function adam(config: AdamConfig = {}) {
  return makeAdam('adam', resolve(config, false, 0));
}

/** AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay. */
export function adamW(config: AdamConfig = {}) {
  return makeAdam('adamw', resolve(config, true, ADAMW_DEFAULT_WEIGHT_DECAY));
}
