// Adam/AdamW as an ONNX graph, for parameter sets large enough that a TypeScript loop over them would cost more than
// the training step itself (docs/engine.md): onnxruntime runs the elementwise update multi-threaded (or on the GPU).
// Same arithmetic, slots and step convention as `adam.ts`, so the two are interchangeable mid-run and share
// checkpoints.
import { add, div, Graph, min, mul, pow, reduceSum, sqrt, sub, type Value } from '../index.ts';
import type { ResolvedAdamConfig } from './adam.ts';
import { CLIP_NORM_EPS } from './clip.ts';
import type { Optimizer } from './types.ts';

/** Graph input/output names for one parameter. Prefixes keep parameter names (which contain dots) unambiguous. */
export const adamGraphNames = (name: string) => ({
  param: `param/${name}`,
  grad: `grad/${name}`,
  m: `m/${name}`,
  v: `v/${name}`,
  newParam: `new_param/${name}`,
  newM: `new_m/${name}`,
  newV: `new_v/${name}`,
});
export const LR_INPUT = 'lr';
/** Updates applied so far (the optimizer state's `step`); the graph uses t = step + 1 for bias correction. */
export const STEP_INPUT = 'step';

export type AdamFamilyOptimizer = Optimizer & { readonly config: ResolvedAdamConfig };

/**
 * Appends the Adam/AdamW update to `g` for parameters and gradients that are already values of `g` (graph inputs, or
 * gradients computed in the same graph for a fused training step): adds inputs `lr`, `step` and `m/…`, `v/…`, and
 * outputs `new_param/…`, `new_m/…`, `new_v/…`. Formula as PyTorch's Adam/AdamW (see `adam.ts`).
 */
export function appendAdamUpdate(g: Graph, entries: readonly { name: string; param: Value; grad: Value }[], config: ResolvedAdamConfig): void {
  const { beta1, beta2, eps, weightDecay, decoupledWeightDecay } = config;
  const lr = g.input(LR_INPUT, 'float32', []);
  const t = add(g.input(STEP_INPUT, 'float32', []), 1);
  const stepSize = div(lr, sub(1, pow(g.scalar(beta1), t)));
  const sqrtBiasCorrection2 = sqrt(sub(1, pow(g.scalar(beta2), t)));
  const decay = decoupledWeightDecay && weightDecay > 0 ? sub(1, mul(lr, weightDecay)) : undefined;
  for (const { name, param: p, grad: gradient } of entries) {
    const names = adamGraphNames(name);
    const shape = p.staticShape;
    const grad = !decoupledWeightDecay && weightDecay > 0 ? add(gradient, mul(p, weightDecay)) : gradient;
    const m = add(mul(g.input(names.m, 'float32', shape), beta1), mul(grad, 1 - beta1));
    const v = add(mul(g.input(names.v, 'float32', shape), beta2), mul(mul(grad, grad), 1 - beta2));
    const denominator = add(div(sqrt(v), sqrtBiasCorrection2), eps);
    const decayed = decay ? mul(p, decay) : p;
    g.output(sub(decayed, div(mul(m, stepSize), denominator)), names.newParam);
    g.output(m, names.newM);
    g.output(v, names.newV);
  }
}

/**
 * The update as a graph of its own: inputs `lr`, `step` (float32 scalars) and, per parameter, `param/…`, `grad/…`,
 * `m/…`, `v/…`; outputs `new_param/…`, `new_m/…`, `new_v/…`.
 */
export function buildAdamGraph(shapes: Record<string, readonly number[]>, config: ResolvedAdamConfig): Graph {
  const g = new Graph(config.decoupledWeightDecay ? 'adamw_update' : 'adam_update');
  const entries = Object.entries(shapes).map(([name, shape]) => {
    const names = adamGraphNames(name);
    return { name, param: g.input(names.param, 'float32', shape), grad: g.input(names.grad, 'float32', shape) };
  });
  appendAdamUpdate(g, entries, config);
  return g;
}

/** Name of the fused step's global-gradient-norm output. */
export const GRAD_NORM_OUTPUT = 'grad_norm';

/**
 * Appends global-norm clipping (as `clip.ts`: scale by maxNorm / (norm + eps) when the norm exceeds maxNorm) and
 * outputs the norm before clipping as `grad_norm`. Returns the gradients to use.
 */
export function appendGlobalNormClip(g: Graph, grads: readonly Value[], maxNorm: number | undefined): Value[] {
  const squares = grads.map((gradient) => reduceSum(mul(gradient, gradient)));
  const norm = sqrt(squares.reduce((a, b) => add(a, b)));
  g.output(norm, GRAD_NORM_OUTPUT);
  if (maxNorm === undefined) return [...grads];
  const scale = min(div(g.scalar(maxNorm), add(norm, CLIP_NORM_EPS)), 1);
  return grads.map((gradient) => mul(gradient, scale));
}
