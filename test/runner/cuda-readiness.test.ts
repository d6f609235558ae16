// RUNNER_EXECUTION_PROVIDER=cuda never degrades to CPU: on a machine without onnxruntime's CUDA provider library (the
// npm install skips it), the real executor's runner stays unready and says which session kind cannot run on CUDA and
// why. Its own file: the session host's settings are per process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cudaProviderInstalled } from '../../gpu-runner/onnx/runtime/execution-provider.ts';
import { loadConfig } from '../../gpu-runner/server/config.ts';
import { ModelPackExecutor } from '../../gpu-runner/server/executors/model-pack-executor.ts';
import { createLogger } from '../../gpu-runner/server/log.ts';
import { startRunner } from '../../gpu-runner/server/runner.ts';
import { readJson } from './support/jobs.ts';
import { TEST_ENV, waitUntil } from './support/runner.ts';

describe('model pack executor with RUNNER_EXECUTION_PROVIDER=cuda where CUDA cannot load', () => {
  it.skipIf(cudaProviderInstalled())('is not ready, names the session kind and the reason, and never runs on CPU', async () => {
    const executor = new ModelPackExecutor({ threads: 1, executionProvider: 'cuda' });
    const stateDir = await mkdtemp(join(tmpdir(), 'hdb-runner-'));
    const strict = await startRunner({ config: loadConfig({ ...TEST_ENV, RUNNER_STATE_DIR: stateDir }), executor, log: createLogger({ level: 'silent' }) });
    try {
      let ready: { ready: boolean; reasons: string[]; session_providers: Record<string, { requested: string; execution_provider?: string; error?: string }> };
      await waitUntil(async () => {
        ready = await readJson(await fetch(`${strict.url}/readyz`));
        return ready.reasons.some((reason) => reason.startsWith('models failed'));
      }, 60_000, 'the CUDA failure');
      expect(ready!.ready).toBe(false);
      expect(ready!.reasons).toContainEqual(expect.stringMatching(/^session kind vae-decoder cannot run on CUDA: .*cuda/i));
      expect(ready!.session_providers['vae-decoder']).toMatchObject({ requested: 'cuda', error: expect.stringMatching(/cuda/i) });
      for (const status of Object.values(ready!.session_providers)) expect(status.execution_provider).toBeUndefined();
      const metrics = await (await fetch(`${strict.url}/metrics`)).text();
      expect(metrics).toContain('runner_session_provider{kind="vae-decoder",provider="failed"} 1');
    } finally {
      await strict.shutdown();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
