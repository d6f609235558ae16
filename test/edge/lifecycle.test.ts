// The whole job path: API create → Postgres row → jobs Queue → signed POST to the runner double → signed events back
// → results in R2 and Postgres → downloads and images for the owner only; webhooks recorded on the way.
import { env } from 'cloudflare:workers';
import { and, eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { jobs, runnerEvents, webhookDeliveries } from '../../db/schema.ts';
import { signMessage, verifyMessage } from '../../contract/index.ts';
import { call, createTenant, expectError, withDb, type TestTenant } from './helpers.ts';
import { file, form, png } from './images.ts';
import { deliver, deliverOk, runnerSecret, waitForRunnerJob, type SignedEvent } from './runner-double.ts';

// Nothing listens there: deliveries are recorded and fail fast, which is all these tests look at.
const WEBHOOK_URL = 'http://127.0.0.1:9/hooks';

let owner: TestTenant;
let stranger: TestTenant;
let subjectId: string;

beforeAll(async () => {
  owner = await createTenant('lifecycle owner');
  stranger = await createTenant('lifecycle stranger');
  const res = await call('/v1/subjects', { method: 'POST', key: owner.key, body: form([file(png(512, 512), 'face.png')], { name: 'Ada' }) });
  expect(res.status).toBe(201);
  subjectId = ((await res.json()) as { id: string }).id;
});

async function createPersonalization(extra: Record<string, unknown> = {}) {
  const res = await call('/v1/personalizations', {
    method: 'POST',
    key: owner.key,
    json: { subject_id: subjectId, finetune: { steps: 4 }, webhook_url: WEBHOOK_URL, ...extra },
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { id: string; status: string };
}

async function getPersonalization(id: string, key = owner.key) {
  const res = await call(`/v1/personalizations/${id}`, { key });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { status: string; progress: { step: number; total_steps: number | null } } };
}

function eventOf(events: SignedEvent[], type: string, step?: number): SignedEvent {
  const found = events.find((e) => e.event.type === type && (step === undefined || ('step' in e.event && e.event.step === step)));
  if (!found) throw new Error(`no ${type} event`);
  return found;
}

describe('personalization lifecycle', () => {
  it('runs from create to downloadable weights, with signed dispatch, progress and webhooks', async () => {
    const created = await createPersonalization();
    expect(created.status).toBe('queued');

    const received = await waitForRunnerJob(created.id);
    expect(received.request.kind).toBe('personalization');
    expect(received.request.events_url).toBe('http://edge.test/internal/runner/events');
    if (received.request.kind !== 'personalization') throw new Error('unreachable');
    expect(received.request.payload.images).toHaveLength(1);
    expect(received.request.payload.images[0]).toMatchObject({ content_type: 'image/png', width: 512, height: 512 });
    expect(JSON.stringify(received.request)).not.toContain(owner.id); // tenant-free
    expect((await getPersonalization(created.id)).body.status).toBe('dispatched');

    const started = await deliverOk(eventOf(received.events, 'started'));
    expect(started).toMatchObject({ outcome: 'applied', cancel: false });
    await deliverOk(eventOf(received.events, 'progress', 1));
    const running = await getPersonalization(created.id);
    expect(running.body.status).toBe('running');
    expect(running.body.progress).toEqual({ step: 1, total_steps: 4 });

    await deliverOk(eventOf(received.events, 'progress', 4));
    const done = await deliverOk(eventOf(received.events, 'succeeded'));
    expect(done.outcome).toBe('applied');
    const finished = await getPersonalization(created.id);
    expect(finished.body).toMatchObject({ status: 'succeeded', progress: { step: 4, total_steps: 4 }, error: null });
    const weightsId = finished.body.weights_id as string;
    expect(weightsId).toMatch(/^wts_/);

    const meta = await call(`/v1/weights/${weightsId}`, { key: owner.key });
    expect(meta.status).toBe(200);
    const weights = (await meta.json()) as { files: { format: string; dtype: string; sha256: string }[]; subject_id: string };
    expect(weights.subject_id).toBe(subjectId);
    expect(weights.files.map((f) => `${f.format}/${f.dtype}`).sort()).toEqual(['kohya/fp16', 'lidb/fp16', 'lidb/fp32', 'peft/fp16']);
    // The listing reads each row's files in the same query; it shows exactly what the single GET shows.
    const listed = (await (await call(`/v1/weights?subject_id=${subjectId}`, { key: owner.key })).json()) as { data: { id: string; files: unknown[] }[] };
    const sortFiles = (files: unknown[]) => [...(files as { format: string; dtype: string }[])].sort((a, b) => `${a.format}/${a.dtype}`.localeCompare(`${b.format}/${b.dtype}`));
    const listedRow = listed.data.find((w) => w.id === weightsId)!;
    expect({ ...listedRow, files: sortFiles(listedRow.files) }).toEqual({ ...weights, files: sortFiles(weights.files) });
    expect(((await (await call(`/v1/weights?subject_id=${subjectId}`, { key: stranger.key })).json()) as { data: unknown[] }).data).toEqual([]);

    const download = await call(`/v1/weights/${weightsId}/download?format=kohya&dtype=fp16`, { key: owner.key });
    expect(download.status).toBe(200);
    const bytes = new Uint8Array(await download.arrayBuffer());
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as { __metadata__: Record<string, string> };
    expect(header.__metadata__).toMatchObject({ format: 'kohya', dtype: 'fp16' });
    expect(download.headers.get('x-content-sha256')).toBe(weights.files.find((f) => f.format === 'kohya')!.sha256);

    await expectError(await call(`/v1/weights/${weightsId}/download?format=peft&dtype=fp32`, { key: owner.key }), 404, 'not_found');
    await expectError(await call(`/v1/weights/${weightsId}`, { key: stranger.key }), 404, 'not_found');
    await expectError(await call(`/v1/weights/${weightsId}/download`, { key: stranger.key }), 404, 'not_found');

    const deliveries = await withDb(({ db }) => db.select().from(webhookDeliveries).where(eq(webhookDeliveries.jobId, created.id)));
    expect(deliveries.map((d) => d.eventType).sort()).toEqual([
      'personalization.progress',
      'personalization.progress',
      'personalization.started',
      'personalization.succeeded',
    ]);
    const succeeded = deliveries.find((d) => d.eventType === 'personalization.succeeded')!;
    expect(JSON.parse(succeeded.body)).toMatchObject({ type: 'personalization.succeeded', data: { id: created.id, weights_id: weightsId } });
  });

  it('treats duplicate and out-of-order events as no-ops that never move a job backwards', async () => {
    const created = await createPersonalization({ webhook_events: ['personalization.succeeded'] });
    const received = await waitForRunnerJob(created.id);
    const late = eventOf(received.events, 'progress', 4);
    const early = eventOf(received.events, 'progress', 1);

    expect((await deliverOk(late)).outcome).toBe('applied');
    expect((await deliverOk(late)).outcome).toBe('duplicate');
    expect((await deliverOk(early)).outcome).toBe('stale'); // lower step after a higher one
    expect((await deliverOk(eventOf(received.events, 'started'))).outcome).toBe('stale'); // already running
    expect((await getPersonalization(created.id)).body.progress).toEqual({ step: 4, total_steps: 4 });

    const succeeded = eventOf(received.events, 'succeeded');
    expect((await deliverOk(succeeded)).outcome).toBe('applied');
    expect((await deliverOk(succeeded)).outcome).toBe('duplicate');
    // A failure that arrives after success changes nothing.
    const lateFailure = JSON.stringify({
      event_id: `evt_${created.id}_late_failure`,
      job_id: created.id,
      attempt: 1,
      occurred_at: new Date().toISOString(),
      type: 'failed',
      error: { code: 'internal', message: 'too late', retryable: false },
    });
    const headers = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body: lateFailure });
    expect((await deliverOk({ headers: { 'content-type': 'application/json', ...headers }, body: lateFailure })).outcome).toBe('stale');
    expect((await getPersonalization(created.id)).body.status).toBe('succeeded');

    const recorded = await withDb(({ db }) => db.select().from(runnerEvents).where(eq(runnerEvents.jobId, created.id)));
    expect(recorded.map((r) => r.outcome).sort()).toEqual(['applied', 'applied', 'stale', 'stale', 'stale']);
    // Only the event the request asked for became a webhook.
    const deliveries = await withDb(({ db }) => db.select().from(webhookDeliveries).where(eq(webhookDeliveries.jobId, created.id)));
    expect(deliveries.map((d) => d.eventType)).toEqual(['personalization.succeeded']);
  });

  it('rejects unsigned, tampered, stale and malformed events', async () => {
    const created = await createPersonalization();
    const received = await waitForRunnerJob(created.id);
    const started = eventOf(received.events, 'started');

    await expectError(await deliver({ headers: { 'content-type': 'application/json' }, body: started.body }), 401, 'invalid_signature');
    const tampered = started.body.replace('"started"', '"started" ').replace(created.id, created.id);
    await expectError(await deliver({ headers: started.headers, body: tampered }), 401, 'invalid_signature');
    const wrongSecret = await signMessage('another-secret-0123456789abcdefghijkl', { method: 'POST', path: '/internal/runner/events', body: started.body });
    await expectError(await deliver({ headers: { ...started.headers, ...wrongSecret }, body: started.body }), 401, 'invalid_signature');
    const old = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body: started.body }, { now: new Date(Date.now() - 3600_000) });
    const stale = await deliver({ headers: { ...started.headers, ...old }, body: started.body });
    expect((await expectError(stale, 401, 'invalid_signature')).error.details).toEqual({ reason: 'timestamp_out_of_window' });

    const malformed = JSON.stringify({ event_id: 'evt_x', job_id: created.id, type: 'progress', step: 'two' });
    const signedMalformed = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body: malformed });
    await expectError(await deliver({ headers: signedMalformed, body: malformed }), 422, 'invalid_event');

    const unknownJob = JSON.stringify({ event_id: 'evt_unknown', job_id: 'psn_0000000000000000000000000000', attempt: 1, occurred_at: new Date().toISOString(), type: 'started' });
    const signedUnknown = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body: unknownJob });
    await expectError(await deliver({ headers: signedUnknown, body: unknownJob }), 404, 'not_found');

    // None of that moved the job.
    expect((await getPersonalization(created.id)).body.status).toBe('dispatched');
  });

  it('rejects a result whose bytes do not match their hash, and keeps the job running', async () => {
    const created = await createPersonalization();
    const received = await waitForRunnerJob(created.id);
    const succeeded = eventOf(received.events, 'succeeded');
    const event = JSON.parse(succeeded.body) as { event_id: string; result: { files: { sha256: string }[] } };
    event.event_id += '_corrupt';
    event.result.files[0]!.sha256 = '0'.repeat(64);
    const body = JSON.stringify(event);
    const headers = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body });
    await expectError(await deliver({ headers: { 'content-type': 'application/json', ...headers }, body }), 422, 'invalid_result');
    expect((await getPersonalization(created.id)).body.status).toBe('dispatched');
  });

  it('cancels: the runner receives a signed DELETE, the job ends canceled, later events are stale and say cancel', async () => {
    const created = await createPersonalization();
    const received = await waitForRunnerJob(created.id);
    await deliverOk(eventOf(received.events, 'started'));
    const res = await call(`/v1/personalizations/${created.id}/cancel`, { method: 'POST', key: owner.key });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('canceled');
    const { runnerJob } = await import('./runner-double.ts');
    await import('vitest').then(({ vi }) => vi.waitFor(async () => expect((await runnerJob(created.id))?.canceled).toBe(true), { timeout: 10_000, interval: 100 }));
    const ack = await deliverOk(eventOf(received.events, 'progress', 1));
    expect(ack).toMatchObject({ outcome: 'stale', cancel: true });
    expect((await getPersonalization(created.id)).body.status).toBe('canceled');
    // Cancel is idempotent; another tenant cannot see or cancel it.
    expect((await call(`/v1/personalizations/${created.id}/cancel`, { method: 'POST', key: owner.key })).status).toBe(200);
    await expectError(await call(`/v1/personalizations/${created.id}/cancel`, { method: 'POST', key: stranger.key }), 404, 'not_found');
    const deliveries = await withDb(({ db }) =>
      db.select().from(webhookDeliveries).where(and(eq(webhookDeliveries.jobId, created.id), eq(webhookDeliveries.eventType, 'personalization.canceled'))),
    );
    expect(deliveries).toHaveLength(1);
  });

  it('a finished personalization cannot be canceled', async () => {
    const created = await createPersonalization();
    const received = await waitForRunnerJob(created.id);
    await deliverOk(eventOf(received.events, 'succeeded'));
    await expectError(await call(`/v1/personalizations/${created.id}/cancel`, { method: 'POST', key: owner.key }), 409, 'already_finished');
  });

  it('a retryable failure re-queues the job for another attempt; the old attempt is stale afterwards', async () => {
    const created = await createPersonalization();
    const first = await waitForRunnerJob(created.id);
    const failure = JSON.stringify({
      event_id: `evt_${created.id}_shutdown`,
      job_id: created.id,
      attempt: 1,
      occurred_at: new Date().toISOString(),
      type: 'failed',
      error: { code: 'shutdown', message: 'runner stopping', retryable: true },
    });
    const headers = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body: failure });
    expect((await deliverOk({ headers, body: failure })).outcome).toBe('applied');
    const second = await waitForRunnerJob(created.id, 2);
    expect(second.request.attempt).toBe(2);
    // The first attempt's result arrives late: it belongs to an old attempt and changes nothing.
    expect((await deliverOk(eventOf(first.events, 'succeeded'))).outcome).toBe('stale');
    expect((await getPersonalization(created.id)).body).toMatchObject({ status: 'dispatched', attempts: 2 });
    expect((await deliverOk(eventOf(second.events, 'succeeded'))).outcome).toBe('applied');
    expect((await getPersonalization(created.id)).body.status).toBe('succeeded');
  });
});

describe('textual inversion', () => {
  it('stores the native file and the kohya/A1111 embedding (no PEFT) and generates from the native file', async () => {
    const created = await createPersonalization({ method: 'textual-inversion' });
    const received = await waitForRunnerJob(created.id);
    if (received.request.kind !== 'personalization') throw new Error('expected a personalization job');
    expect(received.request.payload.method).toBe('textual-inversion');
    expect(received.request.payload.outputs).toEqual([
      { format: 'lidb', dtype: 'fp16' },
      { format: 'lidb', dtype: 'fp32' },
      { format: 'kohya', dtype: 'fp16' },
    ]);
    for (const signed of received.events) expect((await deliverOk(signed)).outcome).toBe('applied');
    const weightsId = (await getPersonalization(created.id)).body.weights_id as string;
    const weights = (await (await call(`/v1/weights/${weightsId}`, { key: owner.key })).json()) as Record<string, unknown> & { files: { format: string; dtype: string }[] };
    expect(weights).toMatchObject({ method: 'textual-inversion', rank: 0, layers: ['text_encoder.text_model.embeddings.token_embedding'] });
    expect(weights.files.map((f) => `${f.format}/${f.dtype}`).sort()).toEqual(['kohya/fp16', 'lidb/fp16', 'lidb/fp32']);
    expect((await call(`/v1/weights/${weightsId}/download?format=kohya&dtype=fp16`, { key: owner.key })).status).toBe(200);

    const res = await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: weightsId, prompt: 'a [V] face on the moon', steps: 2, width: 64, height: 64 } });
    expect(res.status).toBe(202);
    const generation = await waitForRunnerJob(((await res.json()) as { id: string }).id);
    if (generation.request.kind !== 'generation') throw new Error('expected a generation job');
    expect(generation.request.payload.weights).toMatchObject({ format: 'lidb', dtype: 'fp16' });
  });

  it('refuses a PEFT output for textual inversion at creation, naming the formats it writes', async () => {
    const res = await call('/v1/personalizations', {
      method: 'POST',
      key: owner.key,
      json: { subject_id: subjectId, method: 'textual-inversion', outputs: [{ format: 'lidb', dtype: 'fp16' }, { format: 'peft', dtype: 'fp16' }] },
    });
    const body = await expectError(res, 422, 'invalid_request');
    expect(JSON.stringify(body.error.details)).toContain('method textual-inversion has no peft file; it writes lidb, kohya');
    const explicit = await call('/v1/personalizations', {
      method: 'POST',
      key: owner.key,
      json: { subject_id: subjectId, method: 'textual-inversion', outputs: [{ format: 'kohya', dtype: 'fp32' }] },
    });
    expect(explicit.status).toBe(202);
    expect(((await explicit.json()) as { outputs: unknown }).outputs).toEqual([{ format: 'kohya', dtype: 'fp32' }]);
  });
});

describe('generation lifecycle', () => {
  it('generates images from stored weights and serves them to the owner only', async () => {
    const created = await createPersonalization();
    const received = await waitForRunnerJob(created.id);
    await deliverOk(eventOf(received.events, 'succeeded'));
    const weightsId = (await getPersonalization(created.id)).body.weights_id as string;

    const res = await call('/v1/generations', {
      method: 'POST',
      key: owner.key,
      json: { weights_id: weightsId, prompt: 'A [V] face as a rock star', num_images: 2, steps: 3, width: 64, height: 64, seed: 42, webhook_url: WEBHOOK_URL },
    });
    expect(res.status).toBe(202);
    const generation = (await res.json()) as { id: string; status: string };
    const job = await waitForRunnerJob(generation.id);
    if (job.request.kind !== 'generation') throw new Error('expected a generation job');
    expect(job.request.payload.params).toMatchObject({ prompt: 'A [V] face as a rock star', num_images: 2, steps: 3, seed: 42, scheduler: 'ddim' });
    expect(job.request.payload.weights).toMatchObject({ format: 'lidb', dtype: 'fp16' });

    for (const signed of job.events) await deliverOk(signed);
    const got = await call(`/v1/generations/${generation.id}`, { key: owner.key });
    const body = (await got.json()) as { status: string; images: { index: number; url: string; seed: number }[] };
    expect(body.status).toBe('succeeded');
    expect(body.images.map((i) => [i.index, i.seed])).toEqual([[0, 42], [1, 43]]);
    expect(body.images[1]!.url).toBe(`http://edge.test/v1/generations/${generation.id}/images/1`);

    const image = await call(`/v1/generations/${generation.id}/images/1`, { key: owner.key });
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await image.arrayBuffer()).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    await expectError(await call(`/v1/generations/${generation.id}/images/1`, { key: stranger.key }), 404, 'not_found');
    await expectError(await call(`/v1/generations/${generation.id}`, { key: stranger.key }), 404, 'not_found');
    await expectError(await call(`/v1/generations/${generation.id}/images/5`, { key: owner.key }), 404, 'not_found');

    const listed = (await (await call(`/v1/generations?weights_id=${weightsId}`, { key: owner.key })).json()) as { data: { id: string }[] };
    expect(listed.data.map((g) => g.id)).toEqual([generation.id]);
    const row = await withDb(({ db }) => db.select().from(jobs).where(eq(jobs.id, generation.id)));
    expect(row[0]?.status).toBe('succeeded');
    // Generations announce only their outcome.
    const generationDeliveries = await withDb(({ db }) => db.select().from(webhookDeliveries).where(eq(webhookDeliveries.jobId, generation.id)));
    expect(generationDeliveries.map((d) => d.eventType)).toEqual(['generation.succeeded']);
    expect(JSON.parse(generationDeliveries[0]!.body)).toMatchObject({ data: { id: generation.id, images: [{ index: 0 }, { index: 1 }] } });

    // A generation the runner cannot run fails with the runner's reason, and says so.
    const failing = (await (
      await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: weightsId, prompt: 'x', webhook_url: WEBHOOK_URL } })
    ).json()) as { id: string };
    const failingJob = await waitForRunnerJob(failing.id);
    const failure = JSON.stringify({
      event_id: `evt_${failing.id}_failed`,
      job_id: failing.id,
      attempt: failingJob.request.attempt,
      occurred_at: new Date().toISOString(),
      type: 'failed',
      error: { code: 'model_error', message: 'NaN in the UNet output', retryable: false },
    });
    const failureHeaders = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body: failure });
    expect((await deliverOk({ headers: failureHeaders, body: failure })).outcome).toBe('applied');
    const failed = (await (await call(`/v1/generations/${failing.id}`, { key: owner.key })).json()) as { status: string; error: unknown };
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'model_error', message: 'NaN in the UNet output' } });
    const failedDeliveries = await withDb(({ db }) => db.select().from(webhookDeliveries).where(eq(webhookDeliveries.jobId, failing.id)));
    expect(failedDeliveries.map((d) => d.eventType)).toEqual(['generation.failed']);

    // Deleting the weights removes them and their files; new generations cannot use them.
    await expectError(await call(`/v1/weights/${weightsId}`, { method: 'DELETE', key: stranger.key }), 404, 'not_found');
    expect((await call(`/v1/weights/${weightsId}`, { method: 'DELETE', key: owner.key })).status).toBe(204);
    await expectError(await call(`/v1/weights/${weightsId}`, { key: owner.key }), 404, 'not_found');
    await expectError(await call(`/v1/weights/${weightsId}/download`, { key: owner.key }), 404, 'not_found');
    const listedWeights = (await (await call('/v1/weights', { key: owner.key })).json()) as { data: { id: string }[] };
    expect(listedWeights.data.map((w) => w.id)).not.toContain(weightsId);
    const stored = await (env as unknown as { BUCKET: R2Bucket }).BUCKET.list({ prefix: `tenants/${owner.id}/weights/${weightsId}/` });
    expect(stored.objects).toHaveLength(0);
    await expectError(await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: weightsId, prompt: 'x' } }), 404, 'not_found');
  });

  it('refuses bad generation requests', async () => {
    await expectError(await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: 'wts_0000000000000000000000000000', prompt: 'x' } }), 404, 'not_found');
    await expectError(await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: 'w', prompt: '' } }), 422, 'invalid_request');
    await expectError(await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: 'w', prompt: 'x', num_images: 99 } }), 422, 'invalid_request');
    await expectError(await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: 'w', prompt: 'x', width: 100 } }), 422, 'invalid_request');
  });
});

describe('contract signatures in workerd', () => {
  it('verifies with the same module the runner uses', async () => {
    const message = { method: 'POST', path: '/v1/jobs', body: '{}' };
    const headers = await signMessage(runnerSecret(), message);
    expect(await verifyMessage([runnerSecret()], new Headers(headers), message)).toMatchObject({ ok: true });
  });
});
