// The runner process: configuration from the environment (gpu-runner/README.md), the model pack executor in a worker
// thread, the HTTP service, graceful stop on SIGTERM. Run with `node --import tsx gpu-runner/main.ts`.
import { applyRunnerRuntimeDefaults, ConfigError, loadConfig } from './server/config.ts';
import { ThreadExecutor } from './server/executors/thread-executor.ts';
import type { ModelPackExecutorOptions } from './server/executors/model-pack-executor.ts';
import { createLogger } from './server/log.ts';
import { startRunner } from './server/runner.ts';
import { stopOnSignals } from './server/signals.ts';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}

applyRunnerRuntimeDefaults();
const log = createLogger({ level: config.logLevel });
const executorOptions: ModelPackExecutorOptions = {
  ...(config.modelDir ? { modelDir: config.modelDir } : {}),
  executionProvider: config.executionProvider,
};
const executor = new ThreadExecutor({
  moduleUrl: new URL('./server/executors/model-pack-executor.ts', import.meta.url),
  executorOptions,
  description: `model pack ${config.modelDir ?? '(bundled tiny pack)'}`,
  log,
});
const runner = await startRunner({ config, executor, log });
stopOnSignals(runner.shutdown, log);
