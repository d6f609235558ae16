// The tenant-facing webhook endpoints, behind the real database and authentication middleware with real API keys.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { OpenAPIHono } from '@hono/zod-openapi';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeys, jobs, webhookDeliveries } from '../../db/schema.ts';
import type { AppEnv } from '../../edge/app-types.ts';
import { generateApiKey, hashApiKey } from '../../edge/lib/api-keys.ts';
import { newId } from '../../edge/lib/ids.ts';
import { authenticate } from '../../edge/middleware/auth.ts';
import { database } from '../../edge/middleware/database.ts';
import { handleError, handleNotFound } from '../../edge/middleware/errors.ts';
import { enqueueWebhook } from '../../edge/webhooks/enqueue.ts';
import { webhooksRouter } from '../../edge/webhooks/router.ts';
import { Clock, createTenant, drainQueue, openTestDb, receiverScenario, RecordingQueue } from './webhooks-support.ts';

const DEV_POLICY = { allowHttpLoopback: true };

function testApp() {
  const app = new OpenAPIHono<AppEnv>();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use('/v1/*', database());
  app.use('/v1/*', authenticate());
  app.route('/v1/webhooks', webhooksRouter());
  return app;
}

let handle: ReturnType<typeof openTestDb>;
beforeAll(() => {
  handle = openTestDb();
});
afterAll(() => handle.close());

async function keyFor(tenantId: string | null, role: 'tenant' | 'admin' = 'tenant'): Promise<string> {
  const { key, displayPrefix } = generateApiKey(role);
  await handle.db.insert(apiKeys).values({ id: newId('apiKey'), tenantId, role, keyHash: await hashApiKey(key), displayPrefix });
  return key;
}

async function call(queue: RecordingQueue, key: string, method: string, path: string, body?: unknown) {
  const ctx = createExecutionContext();
  const init: RequestInit = { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await testApp().request(path, init, { ...env, WEBHOOKS_QUEUE: queue }, ctx);
  await waitOnExecutionContext(ctx);
  return { status: response.status, json: (await response.json()) as Record<string, unknown> & { data?: Array<Record<string, unknown>> } };
}

/** A tenant with one delivered, one dead and one pending delivery (oldest to newest). */
async function tenantWithDeliveries() {
  const { db } = handle;
  const tenantId = await createTenant(db);
  const key = await keyFor(tenantId);
  const queue = new RecordingQueue();
  const clock = new Clock(new Date('2031-05-05T10:00:00Z'));
  const receiver = await receiverScenario({ secrets: [] });
  const deps = { db, queue, now: clock.now };
  const event = (url: string, type: 'personalization.failed' | 'personalization.progress') =>
    enqueueWebhook(deps, { tenantId, jobId: null, url, events: null, type, data: { n: type } });
  // Consumed under the production policy, the loopback URL is refused: a dead letter after one attempt.
  const dead = (await event(receiver.url, 'personalization.failed'))!.deliveryId;
  await drainQueue(queue, clock, { db, policy: { allowHttpLoopback: false } });
  clock.advance(1);
  const pending = (await event(receiver.url, 'personalization.progress'))!.deliveryId;
  queue.sent.splice(0);
  return { tenantId, key, queue, clock, dead, pending };
}

describe('webhook endpoints', () => {
  it('lists deliveries newest first with cursor pagination, filters by state, and lists dead letters', async () => {
    const { key, queue, dead, pending } = await tenantWithDeliveries();
    const all = await call(queue, key, 'GET', '/v1/webhooks/deliveries?limit=1');
    expect(all.status).toBe(200);
    expect(all.json.data!.map((d) => d.id)).toEqual([pending]);
    expect(all.json.data![0]).toMatchObject({ state: 'pending', event_type: 'personalization.progress', attempts: 0, max_attempts: 8 });
    expect(all.json.data![0]).not.toHaveProperty('dispatch_token');
    const next = await call(queue, key, 'GET', `/v1/webhooks/deliveries?limit=1&cursor=${all.json.next_cursor as string}`);
    expect(next.json.data!.map((d) => d.id)).toEqual([dead]);
    expect(next.json.next_cursor).toBeNull();

    const deadOnly = await call(queue, key, 'GET', '/v1/webhooks/deliveries?state=dead');
    expect(deadOnly.json.data!.map((d) => d.id)).toEqual([dead]);
    const letters = await call(queue, key, 'GET', '/v1/webhooks/dead-letters');
    expect(letters.json.data!.map((d) => d.id)).toEqual([dead]);
    expect(letters.json.data![0]).toMatchObject({ state: 'dead', attempts: 1, last_status: null });
    expect(letters.json.data![0]!.last_error).toMatch(/refused/);
  });

  it("filters by job_id", async () => {
    const { db } = handle;
    const { tenantId, key, queue, clock } = await tenantWithDeliveries();
    const jobId = newId('personalization');
    await db.insert(jobs).values({
      id: jobId,
      tenantId,
      kind: 'personalization',
      params: { method: 'hyperdreambooth', finetune: { steps: 2, rank: 4, relax: 'lora', seed: 0, identifier_token: '[V]' }, outputs: [{ format: 'lidb', dtype: 'fp16' }] },
      maxAttempts: 1,
    });
    const receiver = await receiverScenario({ secrets: [] });
    const { deliveryId } = (await enqueueWebhook(
      { db, queue, now: clock.now },
      { tenantId, jobId, url: receiver.url, events: null, type: 'personalization.started', data: {} },
    ))!;
    const listed = await call(queue, key, 'GET', `/v1/webhooks/deliveries?job_id=${jobId}`);
    expect(listed.json.data!.map((d) => [d.id, d.job_id])).toEqual([[deliveryId, jobId]]);
    expect((await call(queue, key, 'GET', '/v1/webhooks/deliveries?job_id=psn_other')).json.data).toEqual([]);
  });

  it('shows one delivery with its payload', async () => {
    const { key, queue, dead } = await tenantWithDeliveries();
    const one = await call(queue, key, 'GET', `/v1/webhooks/deliveries/${dead}`);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ id: dead, payload: { type: 'personalization.failed', data: { n: 'personalization.failed' } } });
  });

  it('replays a dead letter (202, queued again), refuses a pending one (409)', async () => {
    const { key, queue, dead, pending } = await tenantWithDeliveries();
    const replayed = await call(queue, key, 'POST', `/v1/webhooks/deliveries/${dead}/replay`);
    expect(replayed.status).toBe(202);
    expect(replayed.json).toMatchObject({ id: dead, state: 'pending', attempts: 0, replay_count: 1, dead_at: null });
    expect(queue.sent.map((m) => m.body.deliveryId)).toEqual([dead]);

    const again = await call(queue, key, 'POST', `/v1/webhooks/deliveries/${pending}/replay`);
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ error: { code: 'delivery_pending' } });
  });

  it("another tenant's deliveries are 404 and never listed", async () => {
    const { queue, dead } = await tenantWithDeliveries();
    const otherKey = await keyFor(await createTenant(handle.db));
    expect((await call(queue, otherKey, 'GET', `/v1/webhooks/deliveries/${dead}`)).status).toBe(404);
    expect((await call(queue, otherKey, 'POST', `/v1/webhooks/deliveries/${dead}/replay`)).status).toBe(404);
    expect((await call(queue, otherKey, 'GET', '/v1/webhooks/deliveries')).json.data).toEqual([]);
    expect((await call(queue, otherKey, 'GET', '/v1/webhooks/dead-letters')).json.data).toEqual([]);
    expect(queue.sent).toHaveLength(0);
  });

  it('refuses bad input in the one error shape', async () => {
    const { key, queue } = await tenantWithDeliveries();
    const badCursor = await call(queue, key, 'GET', '/v1/webhooks/deliveries?cursor=bm9wZQ');
    expect(badCursor).toMatchObject({ status: 400, json: { error: { code: 'invalid_cursor' } } });
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'state=lost']) {
      const response = await call(queue, key, 'GET', `/v1/webhooks/deliveries?${query}`);
      expect(response.status, query).toBe(422);
      expect(response.json).toMatchObject({ error: { code: 'invalid_request' } });
    }
    expect((await call(queue, key, 'GET', '/v1/webhooks/deliveries/msg_unknown')).status).toBe(404);
    const rotateBad = await call(queue, key, 'POST', '/v1/webhooks/secrets/rotate', { overlap_seconds: -5 });
    expect(rotateBad.status).toBe(422);
    const rotateJunk = await call(queue, key, 'POST', '/v1/webhooks/secrets/rotate', '{not json');
    expect(rotateJunk.status).toBe(400);
  });

  it('needs a tenant key: missing key 401, admin key 403', async () => {
    const queue = new RecordingQueue();
    const ctx = createExecutionContext();
    const anonymous = await testApp().request('/v1/webhooks/deliveries', {}, { ...env, WEBHOOKS_QUEUE: queue }, ctx);
    await waitOnExecutionContext(ctx);
    expect(anonymous.status).toBe(401);
    const admin = await call(queue, await keyFor(null, 'admin'), 'GET', '/v1/webhooks/deliveries');
    expect(admin.status).toBe(403);
  });

  it('shows the signing secret and rotates it with an overlap', async () => {
    const { db } = handle;
    const tenantId = await createTenant(db);
    const key = await keyFor(tenantId);
    const queue = new RecordingQueue();
    const first = await call(queue, key, 'GET', '/v1/webhooks/secrets');
    expect(first.status).toBe(200);
    expect(first.json.data).toHaveLength(1);
    const original = first.json.data![0]!;
    expect(original.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect((await call(queue, key, 'GET', '/v1/webhooks/secrets')).json.data).toEqual([original]);

    const rotated = await call(queue, key, 'POST', '/v1/webhooks/secrets/rotate', { overlap_seconds: 3600 });
    expect(rotated.status).toBe(201);
    const fresh = rotated.json.secret as Record<string, unknown>;
    expect(fresh.secret).not.toBe(original.secret);
    const live = await call(queue, key, 'GET', '/v1/webhooks/secrets');
    expect(live.json.data!.map((s) => s.secret)).toEqual([fresh.secret, original.secret]);
    expect(live.json.data![1]!.expires_at).toBe(rotated.json.previous_expire_at);

    // Deliveries made now carry both signatures.
    const clock = new Clock(new Date());
    const scenario = await receiverScenario({ secrets: [original.secret as string] });
    await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'generation.succeeded', data: {} });
    await drainQueue(queue, clock, { db, policy: DEV_POLICY });
    const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.url, scenario.url));
    expect(row).toMatchObject({ state: 'delivered' });
  });
});
