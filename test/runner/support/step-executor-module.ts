// The step executor as a module for ThreadExecutor (evaluated inside its worker thread).
import { OnnxStepExecutor, type StepExecutorOptions } from './step-executor.ts';

export function createExecutor(options: StepExecutorOptions & { failWarmup?: boolean }): OnnxStepExecutor {
  if (options.failWarmup) throw new Error('this executor was told not to start');
  return new OnnxStepExecutor(options);
}
