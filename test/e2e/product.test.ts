// The whole product end to end, through its public API: real PostgreSQL, the edge in workerd under `wrangler dev`
// (local R2, Queues), the runner on the tiny model pack, and a real webhook receiver. One stack for the file; the tests
// run in order because the faults act on shared processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedFetch } from '../../contract/index.ts';
import { Api, eventually, sleep, type Job } from './support/api.ts';
import { startE2eStack, type E2eStack } from './support/e2e-stack.ts';
import { facePng } from './support/face.ts';
import { parseSafetensors } from './support/safetensors.ts';
import { WebhookReceiver } from './support/webhook-receiver.ts';

/** Short enough that a lost runner is noticed within the test, long enough that a busy runner keeps its lease. */
const LEASE_SECONDS = 6;
/**
 * Few finetune steps keep a personalization to seconds on a 2-core CPU. The tests that act on a running job (kill the
 * runner, restart the edge or PostgreSQL, fill the queue) need one still running well after its first progress event
 * (sent after a second): 60 steps could finish within that second on a quiet machine.
 */
const QUICK_STEPS = 4;
const LONG_STEPS = 240;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JOB_TIMEOUT_MS = 150_000;
/** Long enough for the runner to meet the outage with a progress event (one a second at most). */
const DATABASE_OUTAGE_MS = 4_000;
/**
 * The webhook retry schedule compressed so that an hour takes a second (edge/webhooks/retry-schedule.ts): the same 8
 * attempts as production, the last no earlier than 24 s (production: 24 h) after the first.
 */
const WEBHOOK_RETRY_SCALE = 1 / 3600;
const SCALED_MIN_RETRY_SPAN_MS = 24 * 3600 * WEBHOOK_RETRY_SCALE * 1000;
/** Bounds the wait for a dead letter: the scaled span plus the local Queue's batch window per attempt, on a busy CPU. */
const DEAD_LETTER_TIMEOUT_MS = 120_000;
/** A test waits for up to two jobs in turn (vitest's own default is 2 minutes in this project). */
const TEST_TIMEOUT_MS = 2 * JOB_TIMEOUT_MS + 30_000;

let e2e: E2eStack;
const hooks = new WebhookReceiver();

async function personalize(api: Api, subjectId: string, steps: number, extra: Record<string, unknown> = {}): Promise<Job> {
  return api.expectJson<Job>('POST', '/v1/personalizations', 202, {
    json: { subject_id: subjectId, method: 'hyperdreambooth', finetune: { steps }, webhook_url: hooks.url, ...extra },
    idempotent: true,
  });
}

/** A webhook delivery as the API shows it. */
interface Delivery {
  id: string;
  event_type: string;
  job_id: string | null;
  state: 'pending' | 'delivered' | 'dead';
  attempts: number;
  max_attempts: number;
  last_status: number | null;
  first_attempt_at: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  dead_at: string | null;
  replay_count: number;
}

function expectSucceeded(job: Job): void {
  expect(job.error, `job ${job.id} failed: ${JSON.stringify(job.error)}`).toBeNull();
  expect(job.status).toBe('succeeded');
}

/** Distinct webhook events (by webhook-id) the receiver accepted for a job. */
function deliveredTypes(jobId: string): string[] {
  const byId = new Map(hooks.accepted(jobId).map((event) => [event.webhookId, event.type]));
  return [...byId.values()];
}

beforeAll(async () => {
  await hooks.start();
  e2e = await startE2eStack({
    // Its own embedded PostgreSQL, so that one test can take the database down.
    ownPostgres: true,
    edgeVars: { JOB_LEASE_SECONDS: String(LEASE_SECONDS), JOB_MAX_ATTEMPTS: '3', WEBHOOK_RETRY_SCALE: String(WEBHOOK_RETRY_SCALE) },
    // No runner-side queue: a second job while one runs is answered 503 (back-pressure to the edge's Queue).
    runnerEnv: { RUNNER_QUEUE_CAPACITY: '0', RUNNER_EVENT_RETRY_MIN_MS: '200', RUNNER_EVENT_RETRY_MAX_MS: '2000' },
  });
  const secrets = await e2e.tenant.expectJson<{ data: { secret: string }[] }>('GET', '/v1/webhooks/secrets', 200);
  hooks.secrets = secrets.data.map((s) => s.secret);
}, 300_000);

afterAll(async () => {
  await e2e?.close();
  await hooks.stop();
});

describe.sequential('the product end to end', () => {
  let subjectId: string;
  let personalization: Job;
  let weightsId: string;
  let generation: Job & { images: { url: string; width: number; height: number; sha256: string }[] };

  it('serves the web client and the API docs from the edge', async () => {
    const page = await fetch(`${e2e.stack.edgeUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>HyperDreamBooth</title>');
    expect((await fetch(`${e2e.stack.edgeUrl}/app.js`)).headers.get('content-type')).toMatch(/javascript/);
    expect((await fetch(`${e2e.stack.edgeUrl}/v1/openapi.json`)).status).toBe(200);
  }, TEST_TIMEOUT_MS);

  it('personalizes an uploaded face, signs the webhook, and serves the weights as safetensors', async () => {
    const subject = await e2e.tenant.uploadSubject(await facePng(0));
    subjectId = subject.id;
    expect(subject.images).toHaveLength(1);

    const created = await personalize(e2e.tenant, subjectId, QUICK_STEPS);
    expect(created.status).toBe('queued');
    personalization = await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, undefined, JOB_TIMEOUT_MS);
    expectSucceeded(personalization);
    expect(personalization.progress).toEqual({ step: QUICK_STEPS, total_steps: QUICK_STEPS });
    weightsId = personalization.weights_id as string;
    expect(weightsId).toMatch(/^\w+_/);

    // The webhook: received by a real HTTP server, signature verified with its own code, one succeeded event.
    await eventually('the personalization.succeeded webhook', () =>
      deliveredTypes(created.id).includes('personalization.succeeded') ? true : undefined,
    );
    expect(hooks.events.filter((event) => event.data.id === created.id).every((event) => event.verified)).toBe(true);
    expect(deliveredTypes(created.id).filter((type) => type === 'personalization.succeeded')).toHaveLength(1);
    expect(deliveredTypes(created.id)).toContain('personalization.started');
    const [succeeded] = hooks.accepted(created.id, 'personalization.succeeded');
    expect(succeeded!.data).toMatchObject({ id: created.id, status: 'succeeded', weights_id: weightsId });

    const meta = await e2e.tenant.expectJson<{ files: { format: string; dtype: string; sha256: string; byte_size: number }[] }>('GET', `/v1/weights/${weightsId}`, 200);
    expect(meta.files.map((f) => `${f.format}/${f.dtype}`).sort()).toEqual(['kohya/fp16', 'lidb/fp16', 'lidb/fp32', 'peft/fp16']);
    for (const file of meta.files) {
      const download = await e2e.tenant.bytes(`/v1/weights/${weightsId}/download?format=${file.format}&dtype=${file.dtype}`);
      expect(download.status).toBe(200);
      expect(download.bytes.byteLength).toBe(file.byte_size);
      const parsed = parseSafetensors(download.bytes);
      expect(parsed.tensors.size).toBeGreaterThan(0);
      const dtypes = new Set([...parsed.tensors.values()].map((t) => t.dtype));
      expect(dtypes).toEqual(new Set([file.dtype === 'fp16' ? 'F16' : 'F32']));
    }
  }, TEST_TIMEOUT_MS);

  it('generates PNG images with the personalized weights', async () => {
    const created = await e2e.tenant.expectJson<Job>('POST', '/v1/generations', 202, {
      json: { weights_id: weightsId, prompt: 'A Pixar character of a sks face', num_images: 2, steps: 3, width: 64, height: 64, seed: 7, webhook_url: hooks.url },
      idempotent: true,
    });
    generation = (await e2e.tenant.waitFor(`/v1/generations/${created.id}`, undefined, JOB_TIMEOUT_MS)) as typeof generation;
    expectSucceeded(generation);
    expect(generation.images).toHaveLength(2);
    for (const image of generation.images) {
      const png = await e2e.tenant.bytes(new URL(image.url).pathname);
      expect(png.status).toBe(200);
      expect(png.contentType).toBe('image/png');
      expect([...png.bytes.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
      const view = new DataView(png.bytes.buffer, png.bytes.byteOffset);
      expect([view.getUint32(16), view.getUint32(20)]).toEqual([64, 64]);
    }
    await eventually('the generation.succeeded webhook', () => (deliveredTypes(created.id).includes('generation.succeeded') ? true : undefined));
  }, TEST_TIMEOUT_MS);

  it('personalizes with textual inversion and generates with the learned embedding', async () => {
    const created = await personalize(e2e.tenant, subjectId, QUICK_STEPS, { method: 'textual-inversion' });
    const done = await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, undefined, JOB_TIMEOUT_MS);
    expectSucceeded(done);
    const tiWeightsId = done.weights_id as string;
    const meta = await e2e.tenant.expectJson<{ method: string; rank: number; files: { format: string; dtype: string }[] }>('GET', `/v1/weights/${tiWeightsId}`, 200);
    expect(meta).toMatchObject({ method: 'textual-inversion', rank: 0 });
    expect(meta.files.map((f) => `${f.format}/${f.dtype}`).sort()).toEqual(['kohya/fp16', 'lidb/fp16', 'lidb/fp32']);
    const embedding = parseSafetensors((await e2e.tenant.bytes(`/v1/weights/${tiWeightsId}/download?format=kohya&dtype=fp16`)).bytes);
    expect([...embedding.tensors.keys()]).toEqual(['emb_params']);
    expect(embedding.tensors.get('emb_params')!.dtype).toBe('F16');

    const generated = await e2e.tenant.expectJson<Job>('POST', '/v1/generations', 202, {
      json: { weights_id: tiWeightsId, prompt: 'a [V] face as a pirate', steps: 2, width: 64, height: 64, seed: 3 },
      idempotent: true,
    });
    const result = (await e2e.tenant.waitFor(`/v1/generations/${generated.id}`, undefined, JOB_TIMEOUT_MS)) as typeof generation;
    expectSucceeded(result);
    const png = await e2e.tenant.bytes(new URL(result.images[0]!.url).pathname);
    expect([...png.bytes.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
  }, TEST_TIMEOUT_MS);

  it('keeps tenants apart: another tenant can neither see, download, cancel nor delete by id or by listing', async () => {
    const other = await e2e.newTenant('other');
    for (const path of ['/v1/subjects', '/v1/personalizations', '/v1/weights', '/v1/generations', '/v1/webhooks/deliveries']) {
      expect((await other.expectJson<{ data: unknown[] }>('GET', path, 200)).data, path).toEqual([]);
    }
    const notFound = async (method: string, path: string, init = {}) => {
      const response = await other.request(method, path, init);
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
    };
    await notFound('GET', `/v1/subjects/${subjectId}`);
    await notFound('GET', `/v1/personalizations/${personalization.id}`);
    await notFound('POST', `/v1/personalizations/${personalization.id}/cancel`);
    await notFound('GET', `/v1/weights/${weightsId}`);
    await notFound('GET', `/v1/weights/${weightsId}/download?format=lidb&dtype=fp16`);
    await notFound('DELETE', `/v1/weights/${weightsId}`);
    await notFound('GET', `/v1/generations/${generation.id}`);
    await notFound('GET', new URL(generation.images[0]!.url).pathname);
    await notFound('DELETE', `/v1/subjects/${subjectId}`);
    // Using the first tenant's objects as inputs is refused the same way.
    await notFound('POST', '/v1/personalizations', { json: { subject_id: subjectId }, idempotent: true });
    await notFound('POST', '/v1/generations', { json: { weights_id: weightsId, prompt: 'a sks face', width: 64, height: 64 }, idempotent: true });
    // And the first tenant still has everything.
    expect((await e2e.tenant.bytes(`/v1/weights/${weightsId}/download?format=lidb&dtype=fp16`)).status).toBe(200);
  }, TEST_TIMEOUT_MS);

  it('ignores duplicate and late runner events: a finished job never moves', async () => {
    const send = (event: Record<string, unknown>) =>
      signedFetch(e2e.stack.runnerSecret, `${e2e.stack.edgeUrl}/internal/runner/events`, { method: 'POST', body: JSON.stringify(event) });
    const base = { job_id: personalization.id, occurred_at: new Date().toISOString() };
    const late = await send({ ...base, event_id: 'evt_e2e_late_failure', attempt: personalization.attempts, type: 'failed', error: { code: 'internal', message: 'late', retryable: false } });
    expect(late.status).toBe(200);
    expect(((await late.json()) as { outcome: string }).outcome).toBe('stale');
    const staleAttempt = await send({ ...base, event_id: 'evt_e2e_old_attempt', attempt: personalization.attempts + 5, type: 'started' });
    expect(((await staleAttempt.json()) as { outcome: string }).outcome).toBe('stale');
    const again = await send({ ...base, event_id: 'evt_e2e_late_failure', attempt: personalization.attempts, type: 'failed', error: { code: 'internal', message: 'late', retryable: false } });
    expect(((await again.json()) as { outcome: string }).outcome).toBe('duplicate');
    const unsigned = await fetch(`${e2e.stack.edgeUrl}/internal/runner/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(401);
    const after = await e2e.tenant.expectJson<Job>('GET', `/v1/personalizations/${personalization.id}`, 200);
    expect(after).toMatchObject({ status: 'succeeded', weights_id: weightsId, error: null });
  }, TEST_TIMEOUT_MS);

  it('cancels a running personalization: the runner stops it, no weights, a canceled webhook', async () => {
    const created = await personalize(e2e.tenant, subjectId, 2 * LONG_STEPS);
    await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, (job) => job.status === 'running' && job.progress.step > 0, JOB_TIMEOUT_MS);
    const canceled = await e2e.tenant.expectJson<Job>('POST', `/v1/personalizations/${created.id}/cancel`, 200);
    expect(canceled.status).toBe('canceled');
    const onRunner = await eventually('the runner to stop the job', async () => {
      const response = await signedFetch(e2e.stack.runnerSecret, `${e2e.stack.runnerUrl}/v1/jobs/${created.id}`, { method: 'GET' });
      const view = (await response.json()) as { status: string; progress: { step: number; total_steps: number } | null };
      return view.status === 'canceled' ? view : undefined;
    });
    expect(onRunner.progress?.step ?? 0).toBeLessThan(2 * LONG_STEPS);
    await eventually('the canceled webhook', () => (deliveredTypes(created.id).includes('personalization.canceled') ? true : undefined));
    expect(deliveredTypes(created.id)).not.toContain('personalization.succeeded');
    const after = await e2e.tenant.expectJson<Job>('GET', `/v1/personalizations/${created.id}`, 200);
    expect(after).toMatchObject({ status: 'canceled', weights_id: null });
  }, TEST_TIMEOUT_MS);

  it('re-dispatches a job whose runner was killed mid-run; it completes once, nothing lost or duplicated', async () => {
    const created = await personalize(e2e.tenant, subjectId, LONG_STEPS);
    await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, (job) => job.status === 'running' && job.progress.step > 0, JOB_TIMEOUT_MS);
    await e2e.stack.killRunner('SIGKILL');
    await e2e.stack.restartRunner();
    // The lease runs out with no word from the runner; the cron sweep hands the job out again.
    await sleep((LEASE_SECONDS + 1) * 1000);
    await e2e.runCron();
    const done = await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, undefined, JOB_TIMEOUT_MS);
    expectSucceeded(done);
    expect(done.attempts).toBe(2);
    expect(done.progress).toEqual({ step: LONG_STEPS, total_steps: LONG_STEPS });
    const weights = await e2e.tenant.expectJson<{ data: { id: string; personalization_id: string }[] }>('GET', `/v1/weights?subject_id=${subjectId}`, 200);
    expect(weights.data.filter((w) => w.personalization_id === created.id)).toHaveLength(1);
    await eventually('the succeeded webhook', () => (deliveredTypes(created.id).includes('personalization.succeeded') ? true : undefined));
    expect(deliveredTypes(created.id).filter((type) => type === 'personalization.succeeded')).toHaveLength(1);
  }, TEST_TIMEOUT_MS);

  it('holds a job back while the runner answers 503 (queue full) and dispatches it when there is room', async () => {
    const mark = e2e.outputMark();
    // Long enough to still be running when the next job's dispatch arrives, even on a faster machine.
    const busy = await personalize(e2e.tenant, subjectId, 2 * LONG_STEPS);
    await e2e.tenant.waitFor(`/v1/personalizations/${busy.id}`, (job) => job.status === 'running', JOB_TIMEOUT_MS);
    const waiting = await e2e.tenant.expectJson<Job>('POST', '/v1/generations', 202, {
      json: { weights_id: weightsId, prompt: 'A sks face as a rock star', steps: 2, width: 64, height: 64 },
      idempotent: true,
    });
    await eventually('a 503 dispatch retry', () =>
      e2e.outputSince(mark).find((line) => line.includes('dispatch retry') && line.includes(waiting.id) && line.includes('503')),
    );
    const metrics = await (await fetch(`${e2e.stack.runnerUrl}/metrics`)).text();
    expect(metrics).toMatch(/runner_requests_rejected_total\{reason="queue_full"\} [1-9]/);
    expectSucceeded(await e2e.tenant.waitFor(`/v1/personalizations/${busy.id}`, undefined, JOB_TIMEOUT_MS));
    const done = await e2e.tenant.waitFor(`/v1/generations/${waiting.id}`, undefined, JOB_TIMEOUT_MS);
    expectSucceeded(done);
    // Back-pressure is not a lost dispatch: the job used one attempt.
    expect(done.attempts).toBe(1);
  }, TEST_TIMEOUT_MS);

  it('finishes a job while the edge restarts; the runner keeps its events until the edge is back', async () => {
    const steps = 2 * LONG_STEPS;
    const created = await personalize(e2e.tenant, subjectId, steps);
    await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, (job) => job.status === 'running' && job.progress.step > 0, JOB_TIMEOUT_MS);
    const mark = e2e.outputMark();
    await e2e.stack.restartEdge();
    const done = await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, undefined, JOB_TIMEOUT_MS);
    expectSucceeded(done);
    expect(done.attempts).toBe(1);
    expect(done.progress).toEqual({ step: steps, total_steps: steps });
    // The runner did meet the edge down, and kept the event until it was back.
    expect(e2e.outputSince(mark).some((line) => line.startsWith('[runner]') && line.includes('event delivery failed'))).toBe(true);
    expect((await e2e.tenant.bytes(`/v1/weights/${done.weights_id as string}/download?format=kohya&dtype=fp16`)).status).toBe(200);
  }, TEST_TIMEOUT_MS);

  it('rides out a PostgreSQL restart mid-job: the API answers 503 with Retry-After meanwhile, the runner keeps its events, the job completes', async () => {
    const created = await personalize(e2e.tenant, subjectId, 2 * LONG_STEPS);
    await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, (job) => job.status === 'running' && job.progress.step > 0, JOB_TIMEOUT_MS);
    const mark = e2e.outputMark();
    const outage = e2e.stack.restartPostgres(DATABASE_OUTAGE_MS);
    // Every answer is either the job or the outage, said plainly: 503, Retry-After, the one error shape.
    await eventually('an API answer during the outage', async () => {
      const response = await e2e.tenant.request('GET', `/v1/personalizations/${created.id}`);
      if (response.status === 200) return undefined;
      expect(response.status).toBe(503);
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await response.json()).toEqual({ error: { code: 'database_unavailable', message: expect.any(String), details: null } });
      return true;
    });
    await outage;
    const done = await e2e.tenant.waitFor(`/v1/personalizations/${created.id}`, undefined, JOB_TIMEOUT_MS);
    expectSucceeded(done);
    expect(done.attempts).toBe(1);
    expect(e2e.outputSince(mark).some((line) => line.startsWith('[runner]') && line.includes('event delivery failed'))).toBe(true);
    const weights = await e2e.tenant.expectJson<{ data: { personalization_id: string }[] }>('GET', `/v1/weights?subject_id=${subjectId}`, 200);
    expect(weights.data.filter((w) => w.personalization_id === created.id)).toHaveLength(1);
  }, TEST_TIMEOUT_MS);

  it('retries webhooks while the receiver is down, then delivers each event once', async () => {
    hooks.down = true;
    const created = await e2e.tenant.expectJson<Job>('POST', '/v1/generations', 202, {
      json: { weights_id: weightsId, prompt: 'A professional shot of a sks face', steps: 2, width: 64, height: 64, webhook_url: hooks.url, webhook_events: ['generation.succeeded'] },
      idempotent: true,
    });
    expectSucceeded(await e2e.tenant.waitFor(`/v1/generations/${created.id}`, undefined, JOB_TIMEOUT_MS));
    await eventually('a refused attempt', () => hooks.events.find((event) => event.data.id === created.id && event.status === 503));
    hooks.down = false;
    // The first retries come within seconds (WEBHOOK_RETRY_SCALE), long before the schedule runs out.
    await eventually('the retried delivery', () => (deliveredTypes(created.id).length > 0 ? true : undefined), 90_000);
    expect(deliveredTypes(created.id)).toEqual(['generation.succeeded']);
    const attempts = hooks.events.filter((event) => event.data.id === created.id);
    expect(new Set(attempts.map((event) => event.webhookId)).size).toBe(1);
    expect(attempts.every((event) => event.verified)).toBe(true);
  }, TEST_TIMEOUT_MS);

  it('dead-letters a webhook whose receiver is down for every attempt; a replay once it is back delivers it once, signed', async () => {
    // A receiver of its own, so that no other delivery meets it down.
    const downHooks = new WebhookReceiver();
    await downHooks.start();
    downHooks.secrets = hooks.secrets;
    downHooks.down = true;
    try {
      const created = await e2e.tenant.expectJson<Job>('POST', '/v1/generations', 202, {
        json: { weights_id: weightsId, prompt: 'A sks face in a watercolor', steps: 2, width: 64, height: 64, webhook_url: downHooks.url, webhook_events: ['generation.succeeded'] },
        idempotent: true,
      });
      expectSucceeded(await e2e.tenant.waitFor(`/v1/generations/${created.id}`, undefined, JOB_TIMEOUT_MS));

      const dead = await eventually(
        'the dead letter',
        async () => (await e2e.tenant.expectJson<{ data: Delivery[] }>('GET', '/v1/webhooks/dead-letters?limit=100', 200)).data.find((d) => d.job_id === created.id),
        DEAD_LETTER_TIMEOUT_MS,
      );
      // Production's number of attempts; only the waits were compressed.
      expect(dead.max_attempts).toBe(8);
      expect(dead).toMatchObject({ state: 'dead', event_type: 'generation.succeeded', attempts: dead.max_attempts, last_status: 503, next_attempt_at: null, replay_count: 0 });
      expect(Date.parse(dead.last_attempt_at!) - Date.parse(dead.first_attempt_at!)).toBeGreaterThanOrEqual(SCALED_MIN_RETRY_SPAN_MS);
      // Every attempt reached the receiver, signed, with the same webhook-id; the receiver answered each with 503.
      const refused = downHooks.events.filter((event) => event.data.id === created.id);
      expect(refused).toHaveLength(dead.max_attempts);
      expect(refused.every((event) => event.webhookId === dead.id && event.verified && event.status === 503)).toBe(true);

      downHooks.down = false;
      const replay = await e2e.tenant.expectJson<Delivery>('POST', `/v1/webhooks/deliveries/${dead.id}/replay`, 202);
      expect(replay).toMatchObject({ id: dead.id, state: 'pending', replay_count: 1 });
      const delivered = await eventually('the replayed delivery', async () => {
        const delivery = await e2e.tenant.expectJson<Delivery>('GET', `/v1/webhooks/deliveries/${dead.id}`, 200);
        return delivery.state === 'delivered' ? delivery : undefined;
      });
      expect(delivered).toMatchObject({ attempts: 1, last_status: 204, replay_count: 1, dead_at: null });
      const accepted = downHooks.accepted(created.id);
      expect(accepted).toHaveLength(1);
      expect(accepted[0]).toMatchObject({ webhookId: dead.id, type: 'generation.succeeded', verified: true, status: 204 });
      expect(accepted[0]!.data).toEqual(refused[0]!.data);
      expect(accepted[0]!.data).toMatchObject({ id: created.id, status: 'succeeded' });
      const deadLetters = await e2e.tenant.expectJson<{ data: Delivery[] }>('GET', '/v1/webhooks/dead-letters?limit=100', 200);
      expect(deadLetters.data.map((d) => d.id)).not.toContain(dead.id);
    } finally {
      await downHooks.stop();
    }
  }, TEST_TIMEOUT_MS);

  it('deletes the subject and everything made from its face: afterwards nothing of it can be downloaded', async () => {
    const subject = await e2e.tenant.expectJson<{ images: { id: string }[] }>('GET', `/v1/subjects/${subjectId}`, 200);
    const made = await e2e.tenant.expectJson<{ data: { id: string }[] }>('GET', `/v1/weights?subject_id=${subjectId}&limit=100`, 200);
    expect(made.data.length).toBeGreaterThan(1);
    const paths = [
      `/v1/subjects/${subjectId}`,
      ...subject.images.map((image) => `/v1/subjects/${subjectId}/images/${image.id}`),
      ...made.data.flatMap((w) => [`/v1/weights/${w.id}`, `/v1/weights/${w.id}/download?format=lidb&dtype=fp16`]),
      ...generation.images.map((image) => new URL(image.url).pathname),
    ];
    for (const path of paths) expect([path, (await e2e.tenant.bytes(path)).status]).toEqual([path, 200]);

    expect((await e2e.tenant.request('DELETE', `/v1/subjects/${subjectId}`)).status).toBe(204);
    for (const path of paths) expect([path, (await e2e.tenant.bytes(path)).status]).toEqual([path, 404]);
    const after = await e2e.tenant.expectJson<{ images: unknown[] }>('GET', `/v1/generations/${generation.id}`, 200);
    expect(after.images).toEqual([]);
  }, TEST_TIMEOUT_MS);
});
