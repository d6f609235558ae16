/**
 * A named set of float32 tensors (flattened). Parameters, gradients and optimizer slots all use this shape so a
 * checkpoint is a flat name → tensor map.
 */
export type ParamSet = Record<string, Float32Array>;

/** Optimizer state: the number of updates applied so far and per-parameter slot tensors (e.g. Adam's m and v). */
export interface OptimizerState {
  /** Updates applied so far; the next update is step `step` (0-based) and uses bias-correction power `step + 1`. */
  step: number;
  /** slot name → parameter name → tensor, each the same length as its parameter. */
  slots: Record<string, ParamSet>;
}

/** A first-order optimizer: pure configuration plus an in-place update over typed arrays. */
export interface Optimizer {
  readonly name: string;
  /** Hyper-parameters after defaults were applied (saved with checkpoints; a resume must match them). */
  readonly config: object;
  /** Slot names this optimizer keeps per parameter, in checkpoint order. */
  readonly slotNames: readonly string[];
  /** Fresh state with zero-filled slots shaped like `params`. */
  init(params: ParamSet): OptimizerState;
  /** Applies one update in place to `params` and `state` with learning rate `lr`, then advances `state.step`. */
  update(params: ParamSet, grads: ParamSet, state: OptimizerState, lr: number): void;
}

/** Throws a clear error unless `grads` and every slot hold exactly the tensors of `params`, with equal lengths. */
export function assertMatchingSets(params: ParamSet, grads: ParamSet, state: OptimizerState, slotNames: readonly string[]): void {
  for (const [name, p] of Object.entries(params)) {
    const g = grads[name];
    if (!g) throw new Error(`optimizer: no gradient for parameter "${name}"`);
    if (g.length !== p.length) {
      throw new Error(`optimizer: gradient "${name}" has ${g.length} elements, parameter has ${p.length}`);
    }
    for (const slot of slotNames) {
      const s = state.slots[slot]?.[name];
      if (!s) throw new Error(`optimizer: state slot "${slot}" has no tensor for parameter "${name}"`);
      if (s.length !== p.length) {
        throw new Error(`optimizer: slot "${slot}/${name}" has ${s.length} elements, parameter has ${p.length}`);
      }
    }
  }
  for (const name of Object.keys(grads)) {
    if (!(name in params)) throw new Error(`optimizer: gradient "${name}" has no matching parameter`);
  }
}

export function zerosLike(params: ParamSet): ParamSet {
  const out: ParamSet = {};
  for (const [name, p] of Object.entries(params)) out[name] = new Float32Array(p.length);
  return out;
}

export function assertFiniteNonNegative(label: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new Error(`${label} must be a finite number ≥ 0, got ${value}`);
}
