import { assertFiniteNonNegative, assertMatchingSets, zerosLike, type Optimizer, type OptimizerState, type ParamSet } from './types.ts';

export interface SgdConfig {
  /** Heavy-ball momentum factor μ; 0 disables the momentum buffer. */
  momentum?: number;
  /** Nesterov momentum (Sutskever et al. 2013, in PyTorch's formulation); needs momentum > 0. */
  nesterov?: boolean;
  /** Coupled L2 penalty: g += wd·p. */
  weightDecay?: number;
}

export interface ResolvedSgdConfig {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

const SGD_SLOTS = ['momentum'] as const;

/**
 * SGD with optional momentum, matching PyTorch's `torch.optim.SGD` (dampening 0): the buffer starts as the first
 * gradient, then b ← μ·b + g; the step uses b (or g + μ·b with Nesterov).
 */
export function sgd(config: SgdConfig = {}): Optimizer & { readonly config: ResolvedSgdConfig } {
  const resolved: ResolvedSgdConfig = {
    momentum: config.momentum ?? 0,
    nesterov: config.nesterov ?? false,
    weightDecay: config.weightDecay ?? 0,
  };
  const { momentum, nesterov, weightDecay } = resolved;
  if (!(momentum >= 0 && momentum < 1)) throw new Error(`sgd: momentum must be in [0, 1), got ${momentum}`);
  if (nesterov && momentum === 0) throw new Error('sgd: nesterov needs momentum > 0');
  assertFiniteNonNegative('sgd: weightDecay', weightDecay);
  const slotNames = momentum > 0 ? SGD_SLOTS : ([] as const);
  return {
    name: 'sgd',
    config: resolved,
    slotNames,
    init: (params): OptimizerState => {
      const slots: OptimizerState['slots'] = {};
      if (momentum > 0) slots.momentum = zerosLike(params);
      return { step: 0, slots };
    },
    update(params: ParamSet, grads: ParamSet, state: OptimizerState, lr: number) {
      assertMatchingSets(params, grads, state, slotNames);
      const first = state.step === 0;
      for (const [key, p] of Object.entries(params)) {
        const g = grads[key]!;
        const buffer = momentum > 0 ? state.slots.momentum![key]! : undefined;
        for (let i = 0; i < p.length; i++) {
          let d = g[i]! + weightDecay * p[i]!;
          if (buffer) {
            const b = first ? d : momentum * buffer[i]! + d;
            buffer[i] = b;
            d = nesterov ? d + momentum * b : b;
          }
          p[i] = p[i]! - lr * d;
        }
      }
      state.step += 1;
    },
  };
}
