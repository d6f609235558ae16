/** A learning rate as a pure function of the 0-based step index. */
export type LearningRateSchedule = (step: number) => number;

function assertStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) throw new Error(`schedule: step must be an integer ≥ 0, got ${step}`);
}

function assertPositive(label: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new Error(`schedule: ${label} must be a finite number ≥ 0, got ${value}`);
}

export function constantSchedule(lr: number): LearningRateSchedule {
  assertPositive('lr', lr);
  return (step) => {
    assertStep(step);
    return lr;
  };
}

/**
 * Linear warm-up from 0 to `lr` over `warmupSteps`, then constant: lr·step/warmupSteps, as in transformers'
 * `get_constant_schedule_with_warmup` (step 0 therefore has lr 0).
 */
export function linearWarmupSchedule(lr: number, warmupSteps: number): LearningRateSchedule {
  assertPositive('lr', lr);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new Error(`schedule: warmupSteps must be an integer ≥ 0, got ${warmupSteps}`);
  return (step) => {
    assertStep(step);
    return step < warmupSteps ? (lr * step) / warmupSteps : lr;
  };
}

export interface CosineScheduleConfig {
  lr: number;
  totalSteps: number;
  warmupSteps?: number;
  /** Floor the cosine decays to (default 0). */
  minLr?: number;
}

/**
 * Linear warm-up then half-cosine decay to `minLr` at `totalSteps` (transformers' `get_cosine_schedule_with_warmup`,
 * num_cycles = 0.5, generalised with a floor as in SGDR, Loshchilov & Hutter 2017 eq. 5); held at `minLr` afterwards.
 */
export function cosineSchedule(config: CosineScheduleConfig): LearningRateSchedule {
  const { lr, totalSteps } = config;
  const warmupSteps = config.warmupSteps ?? 0;
  const minLr = config.minLr ?? 0;
  assertPositive('lr', lr);
  assertPositive('minLr', minLr);
  if (minLr > lr) throw new Error(`schedule: minLr ${minLr} exceeds lr ${lr}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new Error(`schedule: totalSteps must be an integer ≥ 1, got ${totalSteps}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new Error(`schedule: warmupSteps must be an integer in [0, totalSteps], got ${warmupSteps}`);
  }
  return (step) => {
    assertStep(step);
    if (step < warmupSteps) return (lr * step) / warmupSteps;
    const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
