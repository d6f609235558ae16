// A runner process with the step executor, configured by the environment like gpu-runner/main.ts, for the tests
// that need a real process (signals). STEP_SIZE and STEP_DEPTH size the executor's work per step.
import { loadConfig } from '../../../gpu-runner/server/config.ts';
import { createLogger } from '../../../gpu-runner/server/log.ts';
import { startRunner } from '../../../gpu-runner/server/runner.ts';
import { stopOnSignals } from '../../../gpu-runner/server/signals.ts';
import { OnnxStepExecutor } from './step-executor.ts';

const config = loadConfig();
const log = createLogger({ level: config.logLevel });
const executor = new OnnxStepExecutor({ size: Number(process.env.STEP_SIZE ?? 32), depth: Number(process.env.STEP_DEPTH ?? 4) });
const runner = await startRunner({ config, executor, log });
stopOnSignals(runner.shutdown, log);
