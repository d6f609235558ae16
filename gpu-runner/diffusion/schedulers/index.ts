// Schedulers by diffusers class name, configured from a `scheduler_config.json`-shaped object. Swapping schedulers
// works like diffusers' `Cls.from_config(other.config)`: keys the target class knows are taken, the rest are ignored,
// and missing keys get the target class's defaults (SD 1.5's file has no timestep_spacing, so each class uses its own).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parsePythonJson } from '../../io/python-json.ts';
import { DdimScheduler, type DdimOptions } from './ddim.ts';
import { DpmSolverMultistepScheduler, type DpmSolverOptions } from './dpm-solver-multistep.ts';
import { EulerAncestralScheduler } from './euler-ancestral.ts';
import { EulerScheduler, type EulerOptions } from './euler.ts';
import { PndmScheduler } from './pndm.ts';
import type { Scheduler } from './scheduler.ts';

export type { GaussianSource, Scheduler, StepOptions, StepResult } from './scheduler.ts';
export { DdimScheduler, DpmSolverMultistepScheduler, EulerAncestralScheduler, EulerScheduler, PndmScheduler };

export const SCHEDULER_CLASSES = [
  'DDIMScheduler',
  'PNDMScheduler',
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'DPMSolverMultistepScheduler',
] as const;

export type SchedulerOptions = DdimOptions & EulerOptions & DpmSolverOptions;

/** Builds `className` from a config object (extra keys ignored, missing keys defaulted by the class). */
export function createScheduler(className: string, config: unknown, options: SchedulerOptions = {}): Scheduler {
  switch (className) {
    case 'DDIMScheduler':
      return new DdimScheduler(config, options);
    case 'PNDMScheduler':
      return new PndmScheduler(config);
    case 'EulerDiscreteScheduler':
      return new EulerScheduler(config, options);
    case 'EulerAncestralDiscreteScheduler':
      return new EulerAncestralScheduler(config);
    case 'DPMSolverMultistepScheduler':
      return new DpmSolverMultistepScheduler(config, options);
    default:
      throw new Error(`unknown scheduler class "${className}" (supported: ${SCHEDULER_CLASSES.join(', ')})`);
  }
}

const schedulerFileSchema = z.looseObject({ _class_name: z.string() });

/** Loads a diffusers `scheduler/scheduler_config.json`; `className` swaps in another scheduler on the same config. */
export function loadScheduler(path: string, className?: string, options: SchedulerOptions = {}): Scheduler {
  let json: unknown;
  try {
    json = parsePythonJson(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read scheduler config ${path}: ${(error as Error).message}`);
  }
  const parsed = schedulerFileSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${path}: a scheduler config needs a "_class_name"`);
  return createScheduler(className ?? parsed.data._class_name, parsed.data, options);
}
