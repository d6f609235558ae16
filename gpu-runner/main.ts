// The runner process: configuration from the environment (gpu-runner/README.md), the model pack executor in one
// worker thread per concurrent job, the HTTP service, graceful stop on SIGTERM. Run with
// `node --import tsx gpu-runner/main.ts`.
import { applyRunnerRuntimeDefaults, ConfigError, loadConfig } from './server/config.ts';
import { availableParallelism } from 'node:os';
import { ThreadExecutor } from './server/executors/thread-executor.ts';
import { WorkerPoolExecutor } from './server/executors/worker-pool.ts';
import type { ModelPackExecutorOptions } from './server/executors/model-pack-executor.ts';
import { packLabel } from './pack/pack-index.ts';
import { defaultModelDir } from './pack/default-pack.ts';
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
// RUNNER_CONCURRENCY worker threads, each with its own copy of the models; with more than one, the cores are shared
// out among them so their onnxruntime thread pools do not oversubscribe the machine.
const threadsPerWorker = config.concurrency > 1 ? Math.max(1, Math.floor(availableParallelism() / config.concurrency)) : undefined;
// The pack is resolved here, once, so the startup log names the pack the workers load (without RUNNER_MODEL_DIR: the
// trained world pack when complete, else the tiny pack, written on first use).
const modelDir = config.modelDir ?? defaultModelDir();
const executorOptions: ModelPackExecutorOptions = {
  modelDir,
  ...(config.modelVariant ? { modelVariant: config.modelVariant } : {}),
  ...(threadsPerWorker ? { threads: threadsPerWorker } : {}),
  executionProvider: config.executionProvider,
};
const executor = new WorkerPoolExecutor(
  Array.from(
    { length: config.concurrency },
    () =>
      new ThreadExecutor({
        moduleUrl: new URL('./server/executors/model-pack-executor.ts', import.meta.url),
        executorOptions,
        description: `model pack ${packLabel(modelDir)}`,
        log,
      }),
  ),
);
const runner = await startRunner({ config, executor, log });
stopOnSignals(runner.shutdown, log);
