// The runner's POST /v1/weights/check through real HTTP (contract/CONTRACT.md): signed like a job request, answered
// with the executor's check of a native file (executors/weight-check.ts, here on the tiny pack's structure under the
// double's digest: test/support/weights-double.ts), and nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToBase64, RUNNER_PATHS, sha256Hex, signedFetch, type WeightsCheckResult } from '../../contract/index.ts';
import { checkWeightsFile } from '../../gpu-runner/server/executors/weight-check.ts';
import { DOUBLE_BASE_MODEL, weightFile } from '../support/weights-double.ts';
import { readJson, TEST_SECRET } from './support/jobs.ts';
import { startTestRunner, type TestRunner } from './support/runner.ts';
import { OnnxStepExecutor } from './support/step-executor.ts';

/** The step executor, able to check files as the model-pack executor does (against the double's base model). */
class CheckingExecutor extends OnnxStepExecutor {
  checkWeights(bytes: Uint8Array): WeightsCheckResult {
    return checkWeightsFile(bytes, DOUBLE_BASE_MODEL).figures;
  }
}

async function check(runner: TestRunner, bytes: Uint8Array, overrides: Record<string, unknown> = {}, secret = TEST_SECRET): Promise<Response> {
  const body = JSON.stringify({ data_base64: bytesToBase64(bytes), sha256: await sha256Hex(bytes), byte_size: bytes.byteLength, ...overrides });
  return signedFetch(secret, `${runner.url}${RUNNER_PATHS.weightsCheck}`, { method: 'POST', body });
}

let runner: TestRunner;
let plain: TestRunner;

beforeAll(async () => {
  [runner, plain] = await Promise.all([startTestRunner({ executor: new CheckingExecutor() }), startTestRunner()]);
});

afterAll(async () => {
  await Promise.all([runner?.stop(), plain?.stop()]);
});

describe('POST /v1/weights/check', () => {
  it("answers a file that fits with its figures and dtype", async () => {
    const response = await check(runner, weightFile('valid-fp32'));
    expect(response.status).toBe(200);
    const figures = (await readJson(response)) as WeightsCheckResult;
    expect(figures).toMatchObject({ method: 'hyperdreambooth', base_model_id: DOUBLE_BASE_MODEL.id, rank: 1, dtype: 'fp32' });
    expect(figures.layers.length).toBeGreaterThan(0);
  });

  it('refuses a file for another base model, with NaN, or not native, as 422 invalid_weights naming why', async () => {
    for (const [variant, reason] of [['other-base-model', /made for base model/], ['nan', /non-finite/], ['not-native', /__metadata__/]] as const) {
      const response = await check(runner, weightFile(variant));
      expect(response.status, variant).toBe(422);
      const body = await readJson(response);
      expect(body.error.code).toBe('invalid_weights');
      expect(body.error.message).toMatch(reason);
    }
  });

  it('refuses bytes that do not match their sha256, an unsigned request, and answers 501 where the executor cannot check', async () => {
    const bytes = weightFile('valid');
    expect((await readJson(await check(runner, bytes, { sha256: 'ab'.repeat(32) }))).error.code).toBe('invalid_request');
    expect((await check(runner, bytes, {}, 'another-secret-0123456789abcdefghijklmn')).status).toBe(401);
    expect((await check(plain, bytes)).status).toBe(501);
  });
});
