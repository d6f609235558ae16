// The step executor as a module for ThreadExecutor (evaluated inside its worker thread). `failWarmup` and
// `exitOnJobWithSteps` make it fail the way real model code can: a load error, or the thread dying mid-job.
import type { ExecutionContext, PersonalizeInput, PersonalizeOutput } from '../../../gpu-runner/server/jobs/executor.ts';
import { OnnxStepExecutor, type StepExecutorOptions } from './step-executor.ts';

type Options = StepExecutorOptions & { failWarmup?: boolean; exitOnJobWithSteps?: number };

class DyingStepExecutor extends OnnxStepExecutor {
  constructor(private readonly exitOnSteps: number, options: StepExecutorOptions) {
    super(options);
  }

  override async personalize(input: PersonalizeInput, context: ExecutionContext): Promise<PersonalizeOutput> {
    if (input.finetune.steps === this.exitOnSteps) {
      context.reportProgress(1, input.finetune.steps);
      process.exit(3); // In a worker thread this ends the thread only, as a native crash in a session would.
    }
    return super.personalize(input, context);
  }
}

export function createExecutor(options: Options): OnnxStepExecutor {
  if (options.failWarmup) throw new Error('this executor was told not to start');
  return options.exitOnJobWithSteps === undefined ? new OnnxStepExecutor(options) : new DyingStepExecutor(options.exitOnJobWithSteps, options);
}
