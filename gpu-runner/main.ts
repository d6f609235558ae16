// The runner process: configuration from the environment (gpu-runner/README.md), the model pack executor, the HTTP
// service, graceful stop on SIGTERM. Every onnxruntime session lives in the engine's session host worker
// (gpu-runner/onnx/runtime), so model runs never block this thread's event loop. Run with
// `node --import tsx gpu-runner/main.ts`.
import { applyRunnerRuntimeDefaults, ConfigError, loadConfig } from './server/config.ts';
import { ModelPackExecutor } from './server/executors/model-pack-executor.ts';
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
// The pack is resolved here, once, so the startup log names the pack the executor loads (without RUNNER_MODEL_DIR:
// the trained world pack when complete, else the tiny pack, written on first use). RUNNER_CONCURRENCY jobs share the
// executor and its sessions: one copy of each model, their runs taking turns in the session worker.
const modelDir = config.modelDir ?? defaultModelDir();
const executor = new ModelPackExecutor({
  modelDir,
  ...(config.modelVariant ? { modelVariant: config.modelVariant } : {}),
  executionProvider: config.executionProvider,
  samplingPrecision: config.samplingPrecision,
});
const runner = await startRunner({ config, executor, log });
stopOnSignals(runner.shutdown, log);
