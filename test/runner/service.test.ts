// The runner service through real HTTP, with a real local server standing in for the edge's event endpoint, and a
// real onnxruntime step executor (test/runner/support/step-executor.ts) doing the work.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNNER_PATHS, signMessage, type RunnerEvent } from '../../contract/index.ts';
import { parseSafetensors } from '../../gpu-runner/io/safetensors.ts';
import { startFakeEdge, type FakeEdge } from './support/fake-edge.ts';
import { loadConfig } from '../../gpu-runner/server/config.ts';
import { createLogger } from '../../gpu-runner/server/log.ts';
import { startRunner } from '../../gpu-runner/server/runner.ts';
import { generationJob, inlineSource, personalizationJob, readJson, runnerClient, stepWeights, TEST_SECRET, testPhoto } from './support/jobs.ts';
import { startTestRunner, TEST_ENV, waitUntil, type TestRunner } from './support/runner.ts';
import { OnnxStepExecutor } from './support/step-executor.ts';

/** A personalization of this many steps on the slow executor takes seconds: long enough to act on mid-job. */
const LONG_JOB_STEPS = 2000;
const slowExecutor = () => new OnnxStepExecutor({ size: 160, depth: 8 });

const eventsOf = (edge: FakeEdge, jobId: string) => edge.events.filter((event) => event.job_id === jobId);
const typesOf = (edge: FakeEdge, jobId: string) => eventsOf(edge, jobId).map((event) => event.type);
const isFinal = (jobId: string) => (event: RunnerEvent) => event.job_id === jobId && (event.type === 'succeeded' || event.type === 'failed');

let edge: FakeEdge;
let runner: TestRunner;

beforeAll(async () => {
  edge = await startFakeEdge({ secret: TEST_SECRET });
  runner = await startTestRunner();
});

afterAll(async () => {
  await runner?.stop();
  await edge?.close();
});

describe('health, readiness and metrics', () => {
  it('answers /healthz and /readyz once the models are loaded', async () => {
    expect(await readJson(await fetch(`${runner.url}/healthz`))).toEqual({ status: 'ok' });
    const ready = await fetch(`${runner.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await readJson(ready)).toMatchObject({ ready: true, reasons: [] });
  });

  it('reports a model load failure on /readyz and refuses jobs with 503', async () => {
    class FailingExecutor extends OnnxStepExecutor {
      override async warmup(): Promise<void> {
        throw new Error('this executor was told not to start');
      }
    }
    const stateDir = await mkdtemp(join(tmpdir(), 'hdb-runner-'));
    const broken = await startRunner({ config: loadConfig({ ...TEST_ENV, RUNNER_STATE_DIR: stateDir }), executor: new FailingExecutor(), log: createLogger({ level: 'silent' }) });
    try {
      await waitUntil(async () => (await readJson(await fetch(`${broken.url}/readyz`))).reasons.some((r: string) => r.startsWith('models failed')), 30_000, 'load failure');
      const readyz = await readJson(await fetch(`${broken.url}/readyz`));
      expect(readyz.reasons.join()).toContain('this executor was told not to start');
      const response = await runnerClient(broken.url).post(await personalizationJob({ eventsUrl: edge.eventsUrl }));
      expect(response.status).toBe(503);
    } finally {
      await broken.shutdown();
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('exposes Prometheus metrics', async () => {
    const response = await fetch(`${runner.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    for (const name of ['runner_queue_depth', 'runner_job_duration_seconds', 'runner_steps_total', 'runner_job_failures_total', 'runner_outbox_pending']) {
      expect(text).toContain(`# TYPE ${name}`);
    }
  });
});

describe('jobs end to end', () => {
  it('runs a personalization: started, progress, succeeded with one weight file per requested output', async () => {
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 60 });
    const response = await runner.client.post(job);
    expect(response.status).toBe(202);
    expect(await readJson(response)).toEqual({ job_id: job.job_id, status: 'accepted' });

    const final = await edge.waitFor(isFinal(job.job_id));
    expect(final.type).toBe('succeeded');
    const types = typesOf(edge, job.job_id);
    expect(types[0]).toBe('started');
    expect(types.at(-1)).toBe('succeeded');
    const progress = eventsOf(edge, job.job_id).filter((event) => event.type === 'progress');
    for (const event of progress) expect(event).toMatchObject({ total_steps: 60 });

    if (final.type !== 'succeeded' || final.result.kind !== 'personalization') throw new Error('expected a personalization result');
    expect(final.result.files.map((file) => `${file.format}/${file.dtype}`)).toEqual(['lidb/fp16', 'lidb/fp32']);
    for (const file of final.result.files) {
      const bytes = Buffer.from(file.data_base64, 'base64');
      expect(bytes.byteLength).toBe(file.byte_size);
      const state = parseSafetensors(new Uint8Array(bytes)).tensors.get('state');
      expect(state?.dtype).toBe(file.dtype === 'fp16' ? 'F16' : 'F32');
    }

    const view = await readJson(await runner.client.get(job.job_id));
    expect(view).toMatchObject({ job_id: job.job_id, status: 'succeeded', progress: { step: 60, total_steps: 60 } });
    expect(view.timings.compute_ms).toBeGreaterThan(0);
  });

  it('runs a generation: PNG images of the requested size, one per seed', async () => {
    const job = generationJob({ eventsUrl: edge.eventsUrl, weights: stepWeights(), params: { num_images: 2, steps: 3, width: 64, height: 72, seed: 7 } });
    expect((await runner.client.post(job)).status).toBe(202);
    const final = await edge.waitFor(isFinal(job.job_id));
    if (final.type !== 'succeeded' || final.result.kind !== 'generation') throw new Error(`expected images, got ${JSON.stringify(final)}`);
    expect(final.result.images.map((image) => image.seed)).toEqual([7, 8]);
    for (const image of final.result.images) {
      const meta = await sharp(Buffer.from(image.data_base64, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 64, 72]);
    }
    expect(final.result.images[0]?.sha256).not.toBe(final.result.images[1]?.sha256);
  });

  it('accepts a duplicate job id once and runs the job once', async () => {
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 3 });
    const first = await runner.client.post(job);
    const second = await runner.client.post(job);
    expect(await readJson(first)).toMatchObject({ status: 'accepted' });
    expect(second.status).toBe(202);
    expect(await readJson(second)).toMatchObject({ status: 'duplicate' });
    await edge.waitFor(isFinal(job.job_id));
    expect((await runner.client.post(job)).status).toBe(202);
    expect(typesOf(edge, job.job_id).filter((type) => type === 'started')).toHaveLength(1);
  });

  it('fails a job whose weights the executor cannot use, as invalid input that will not be retried', async () => {
    const job = generationJob({ eventsUrl: edge.eventsUrl, weights: new TextEncoder().encode('not a safetensors file') });
    expect((await runner.client.post(job)).status).toBe(202);
    const final = await edge.waitFor(isFinal(job.job_id));
    expect(final).toMatchObject({ type: 'failed', error: { code: 'invalid_input', retryable: false } });
  });
});

describe('inputs by URL', () => {
  const urlJob = async (source: { url: string; sha256: string; byte_size: number }) => {
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 2 });
    if (job.kind !== 'personalization') throw new Error('unreachable');
    const image = job.payload.images[0];
    if (!image) throw new Error('unreachable');
    return { ...job, payload: { ...job.payload, images: [{ ...image, source }] } };
  };

  it('fetches an image from its URL and checks its hash', async () => {
    const photo = await testPhoto();
    const { sha256, byte_size } = inlineSource(photo);
    const good = await urlJob({ url: edge.serveInput(photo), sha256, byte_size });
    expect((await runner.client.post(good)).status).toBe(202);
    expect(await edge.waitFor(isFinal(good.job_id))).toMatchObject({ type: 'succeeded' });

    const tampered = await urlJob({ url: edge.serveInput(photo), sha256: 'b'.repeat(64), byte_size });
    expect((await runner.client.post(tampered)).status).toBe(202);
    const failed = await edge.waitFor(isFinal(tampered.job_id));
    expect(failed).toMatchObject({ type: 'failed', error: { code: 'invalid_input', retryable: false } });
    if (failed.type === 'failed') expect(failed.error.message).toMatch(/SHA-256/);
  });

  it('fails a job whose input URL has expired, as invalid input', async () => {
    const photo = await testPhoto();
    const { sha256, byte_size } = inlineSource(photo);
    const job = await urlJob({ url: `${edge.url}/internal/runner/inputs?key=expired`, sha256, byte_size });
    expect((await runner.client.post(job)).status).toBe(202);
    expect(await edge.waitFor(isFinal(job.job_id))).toMatchObject({ type: 'failed', error: { code: 'invalid_input' } });
  });
});

describe('signatures', () => {
  const postWith = (headers: Record<string, string>, body: string) =>
    fetch(`${runner.url}${RUNNER_PATHS.jobs}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('refuses unsigned requests, a wrong secret and a tampered body', async () => {
    const body = JSON.stringify(await personalizationJob({ eventsUrl: edge.eventsUrl }));
    const unsigned = await postWith({}, body);
    expect(unsigned.status).toBe(401);
    expect(await readJson(unsigned)).toMatchObject({ error: { code: 'unauthorized' } });

    const wrongSecret = await signMessage('another-secret-that-is-long-enough-0123456789', { method: 'POST', path: RUNNER_PATHS.jobs, body });
    expect((await postWith(wrongSecret, body)).status).toBe(401);

    const signed = await signMessage(TEST_SECRET, { method: 'POST', path: RUNNER_PATHS.jobs, body });
    expect((await postWith(signed, body.replace('"steps":5', '"steps":6'))).status).toBe(401);
  });

  it('refuses stale timestamps and replayed message ids', async () => {
    const body = JSON.stringify(await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 1 }));
    const stale = await signMessage(TEST_SECRET, { method: 'POST', path: RUNNER_PATHS.jobs, body }, { now: new Date(Date.now() - 10 * 60_000) });
    expect((await postWith(stale, body)).status).toBe(401);

    const fresh = await signMessage(TEST_SECRET, { method: 'POST', path: RUNNER_PATHS.jobs, body });
    expect((await postWith(fresh, body)).status).toBe(202);
    const replay = await postWith(fresh, body);
    expect(replay.status).toBe(401);
    expect(await readJson(replay)).toMatchObject({ error: { code: 'replayed' } });
  });

  it('refuses a signed cancel replayed against another job', async () => {
    const headers = await signMessage(TEST_SECRET, { method: 'DELETE', path: RUNNER_PATHS.job('job_a'), body: '' });
    const response = await fetch(`${runner.url}${RUNNER_PATHS.job('job_b')}`, { method: 'DELETE', headers });
    expect(response.status).toBe(401);
  });
});

describe('malformed jobs', () => {
  it('answers 400 to a body that is not JSON', async () => {
    const response = await runner.client.post('{"job_id": ');
    expect(response.status).toBe(400);
    expect(await readJson(response)).toMatchObject({ error: { code: 'malformed_json' } });
  });

  it('answers 422 with the offending fields to jobs outside the contract or its bounds', async () => {
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl });
    const tooManySteps = { ...job, payload: { ...(job.payload as object), finetune: { steps: 100_000 } } };
    const response = await runner.client.post(tooManySteps);
    expect(response.status).toBe(422);
    const body = await readJson(response);
    expect(body.error.code).toBe('invalid_job');
    expect(body.error.details.map((d: { path: string }) => d.path)).toContain('payload.finetune.steps');

    const unknownKind = await runner.client.post({ ...job, kind: 'training' });
    expect(unknownKind.status).toBe(422);
    const extraField = await runner.client.post({ ...job, tenant_id: 't_1' });
    expect(extraField.status).toBe(422);
  });

  it('refuses truncated images, non-image bytes and hash mismatches with a clear reason', async () => {
    const photo = await testPhoto();
    const truncated = await runner.client.post(await personalizationJob({ eventsUrl: edge.eventsUrl, image: photo.subarray(0, photo.length - 40) }));
    expect(truncated.status).toBe(422);
    expect((await readJson(truncated)).error.message).toMatch(/images\[0\].*(truncated|corrupt|readable)/);

    const text = await runner.client.post(await personalizationJob({ eventsUrl: edge.eventsUrl, image: new TextEncoder().encode('GIF89a but not really an image') }));
    expect(text.status).toBe(422);
    expect((await readJson(text)).error.message).toMatch(/not a readable JPEG, PNG or WebP/);

    const job = await personalizationJob({ eventsUrl: edge.eventsUrl });
    if (job.kind !== 'personalization') throw new Error('unreachable');
    const image = job.payload.images[0];
    if (!image) throw new Error('unreachable');
    const mismatched = { ...job, payload: { ...job.payload, images: [{ ...image, source: { ...inlineSource(photo), sha256: 'a'.repeat(64) } }] } };
    const mismatch = await runner.client.post(mismatched);
    expect(mismatch.status).toBe(422);
    expect((await readJson(mismatch)).error.message).toMatch(/SHA-256/);
  });

  it('refuses an image whose declared type or size does not match its bytes', async () => {
    const jpeg = await testPhoto(96, 96, 'jpeg');
    const wrongType = await runner.client.post(await personalizationJob({ eventsUrl: edge.eventsUrl, image: jpeg, contentType: 'image/png' }));
    expect(wrongType.status).toBe(422);
    expect((await readJson(wrongType)).error.message).toMatch(/declared image\/png but its bytes are image\/jpeg/);
    const wrongSize = await runner.client.post(await personalizationJob({ eventsUrl: edge.eventsUrl, width: 128 }));
    expect(wrongSize.status).toBe(422);
  });
});

describe('queue and cancellation', () => {
  it('answers 503 with Retry-After when the queue is full, and cancels a queued job without events', async () => {
    const small = await startTestRunner({ env: { RUNNER_QUEUE_CAPACITY: '1' }, executor: slowExecutor() });
    try {
      const running = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: LONG_JOB_STEPS });
      const waiting = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 1 });
      const refused = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 1 });
      expect((await small.client.post(running)).status).toBe(202);
      expect((await small.client.post(waiting)).status).toBe(202);
      const full = await small.client.post(refused);
      expect(full.status).toBe(503);
      expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await readJson(full)).toMatchObject({ error: { code: 'queue_full' } });
      const readyz = await fetch(`${small.url}/readyz`);
      expect(readyz.status).toBe(503);
      expect((await readJson(readyz)).reasons).toContain('queue full');
      expect(await (await fetch(`${small.url}/metrics`)).text()).toMatch(/runner_queue_depth 1\b/);

      const cancelWaiting = await small.client.cancel(waiting.job_id);
      expect(cancelWaiting.status).toBe(202);
      expect(await readJson(cancelWaiting)).toMatchObject({ status: 'canceled' });
      expect(await readJson(await small.client.get(waiting.job_id))).toMatchObject({ status: 'canceled' });
      expect((await small.client.cancel(running.job_id)).status).toBe(202);
      await edge.waitFor(isFinal(running.job_id));
      expect(eventsOf(edge, waiting.job_id)).toEqual([]);
      expect((await small.client.cancel('job_unknown')).status).toBe(404);
    } finally {
      await small.stop();
    }
  });

  it('stops a running job between steps when the edge cancels it', async () => {
    const slow = await startTestRunner({ executor: slowExecutor() });
    try {
      const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: LONG_JOB_STEPS });
      expect((await slow.client.post(job)).status).toBe(202);
      await edge.waitFor((event) => event.job_id === job.job_id && event.type === 'progress');
      const cancel = await slow.client.cancel(job.job_id);
      expect(cancel.status).toBe(202);
      expect(await readJson(cancel)).toMatchObject({ status: 'canceling' });
      const final = await edge.waitFor(isFinal(job.job_id));
      expect(final).toMatchObject({ type: 'failed', error: { code: 'canceled', retryable: false } });
      const view = await readJson(await slow.client.get(job.job_id));
      expect(view.status).toBe('canceled');
      expect(view.progress.step).toBeLessThan(LONG_JOB_STEPS);
    } finally {
      await slow.stop();
    }
  });

  it('stops a running job when an event acknowledgement says the edge canceled it', async () => {
    const slow = await startTestRunner({ executor: slowExecutor() });
    try {
      const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: LONG_JOB_STEPS });
      edge.cancelJob(job.job_id);
      expect((await slow.client.post(job)).status).toBe(202);
      const final = await edge.waitFor(isFinal(job.job_id));
      expect(final).toMatchObject({ type: 'failed', error: { code: 'canceled' } });
    } finally {
      await slow.stop();
    }
  });
});

describe('event delivery', () => {
  it('retries events until the edge acknowledges them, delivering each once and in order', async () => {
    edge.failNext(3);
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 4 });
    expect((await runner.client.post(job)).status).toBe(202);
    const final = await edge.waitFor(isFinal(job.job_id));
    expect(final.type).toBe('succeeded');
    expect(edge.requests.filter((request) => request.status === 503)).toHaveLength(3);
    const types = typesOf(edge, job.job_id);
    expect(types.filter((type) => type === 'succeeded')).toHaveLength(1);
    expect(types[0]).toBe('started');
    await waitUntil(() => runner.service.notReadyReasons().length === 0, 5_000, 'outbox drained');
    const metrics = await (await fetch(`${runner.url}/metrics`)).text();
    expect(metrics).toMatch(/runner_event_delivery_failures_total\{reason="http_503"\} [1-9]/);
  });

  it('keeps retrying through 401 and 409, and moves an event the edge refuses for good (422) to dead letters', async () => {
    edge.failNext(2, 401);
    const retried = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 2 });
    expect((await runner.client.post(retried)).status).toBe(202);
    expect(await edge.waitFor(isFinal(retried.job_id))).toMatchObject({ type: 'succeeded' });
    expect(typesOf(edge, retried.job_id)[0]).toBe('started');

    edge.failNext(1, 422);
    const refused = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 2 });
    expect((await runner.client.post(refused)).status).toBe(202);
    expect(await edge.waitFor(isFinal(refused.job_id))).toMatchObject({ type: 'succeeded' });
    expect(typesOf(edge, refused.job_id)).not.toContain('started');
    const dead = await readdir(join(runner.stateDir, 'outbox', 'dead'));
    expect(dead.length).toBe(1);
    expect(await (await fetch(`${runner.url}/metrics`)).text()).toMatch(/runner_events_dead_lettered_total 1\b/);
  });

  it('reports the total once, on the last step, for a job shorter than the progress interval', async () => {
    const patient = await startTestRunner({ env: { RUNNER_PROGRESS_INTERVAL_MS: '600000' } });
    try {
      const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 3 });
      expect((await patient.client.post(job)).status).toBe(202);
      await edge.waitFor(isFinal(job.job_id));
      const events = eventsOf(edge, job.job_id);
      expect(events.map((event) => event.type)).toEqual(['started', 'progress', 'succeeded']);
      expect(events[1]).toMatchObject({ step: 3, total_steps: 3 });
    } finally {
      await patient.stop();
    }
  });

  it('never exceeds one progress event per interval', async () => {
    const paced = await startTestRunner({ env: { RUNNER_PROGRESS_INTERVAL_MS: '200' }, executor: slowExecutor() });
    try {
      // ~130 GFLOP of MatMuls: seconds on one core, so several intervals pass whatever the machine.
      const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: LONG_JOB_STEPS });
      expect((await paced.client.post(job)).status).toBe(202);
      await edge.waitFor(isFinal(job.job_id));
      const events = eventsOf(edge, job.job_id);
      const progress = events.filter((event) => event.type === 'progress');
      expect(progress.length).toBeGreaterThan(0);
      const times = progress.map((event) => Date.parse(event.occurred_at));
      for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(200 - 1);
      const steps = progress.map((event) => (event.type === 'progress' ? event.step : 0));
      expect(steps).toEqual([...steps].sort((a, b) => a - b));
    } finally {
      await paced.stop();
    }
  });
});

describe('metrics after jobs', () => {
  it('counts durations and steps by kind and method, and failures by code', async () => {
    const text = await (await fetch(`${runner.url}/metrics`)).text();
    expect(text).toMatch(/runner_job_duration_seconds_count\{kind="personalization",method="hyperdreambooth",outcome="succeeded"\} [1-9]/);
    expect(text).toMatch(/runner_job_duration_seconds_count\{kind="generation",method="ddim",outcome="succeeded"\} [1-9]/);
    expect(text).toMatch(/runner_steps_total\{kind="personalization",method="hyperdreambooth"\} [1-9]/);
    expect(text).toMatch(/runner_steps_per_second\{kind="generation",method="ddim"\} \d/);
    expect(text).toMatch(/runner_job_failures_total\{kind="generation",method="ddim",code="invalid_input"\} [1-9]/);
    expect(text).toMatch(/runner_requests_rejected_total\{reason="signature_mismatch"\} [1-9]/);
    expect(text).toMatch(/runner_requests_rejected_total\{reason="replay"\} [1-9]/);
  });
});
