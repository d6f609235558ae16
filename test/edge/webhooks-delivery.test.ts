// Webhook delivery end to end inside workerd: enqueueWebhook → (queue) → consumer → a real HTTP receiver in Node that
// verifies the Standard Webhooks signature with its own implementation. Time is an injected clock, never a sleep.
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { env } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookDeliveries } from '../../db/schema.ts';
import { consumeWebhookBatch, redispatchOverdueWebhooks, SWEEP_GRACE_SECONDS } from '../../edge/webhooks/consumer.ts';
import { listWebhookDeliveries, replayWebhookDelivery } from '../../edge/webhooks/deliveries-store.ts';
import { enqueueWebhook } from '../../edge/webhooks/enqueue.ts';
import { MAX_QUEUE_DELAY_SECONDS } from '../../edge/webhooks/queue-message.ts';
import { MIN_RETRY_SPAN_SECONDS, retryScheduleFromEnv, WEBHOOK_MAX_ATTEMPTS, WEBHOOK_RETRY_CEILINGS_SECONDS } from '../../edge/webhooks/retry-schedule.ts';
import type { Env } from '../../edge/env.ts';
import type { Keyring } from '../../edge/lib/sealing.ts';
import { ensureWebhookSecrets, rotateWebhookSecret, webhookKeyringFromEnv } from '../../edge/webhooks/secrets-store.ts';
import { PRODUCTION_TARGET_POLICY } from '../../edge/webhooks/target-policy.ts';
import { Clock, createTenant, drainQueue, openTestDb, receivedBy, receiverScenario, RecordingQueue } from './webhooks-support.ts';

const DEV_POLICY = { allowHttpLoopback: true };
const START = new Date('2030-03-01T12:00:00Z');
const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

let handle: ReturnType<typeof openTestDb>;
let keyring: Keyring;
beforeAll(async () => {
  handle = openTestDb();
  keyring = await webhookKeyringFromEnv(env as unknown as Env);
});
afterAll(() => handle.close());

async function setup(options: { failFirst?: number; mode?: 'normal' | 'redirect' | 'hang'; retryAfter?: string; failStatus?: number } = {}) {
  const { db } = handle;
  const tenantId = await createTenant(db);
  const clock = new Clock(START);
  const [secret] = await ensureWebhookSecrets(db, keyring, tenantId, clock.now());
  const scenario = await receiverScenario({ secrets: [secret!.secret], ...options });
  const queue = new RecordingQueue();
  return { db, tenantId, clock, scenario, queue, secret: secret!.secret };
}

async function deliveryRow(id: string) {
  const [row] = await handle.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
  return row!;
}

describe('webhook delivery', () => {
  it('POSTs a signed event that the receiver verifies with its own implementation', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup();
    const data = { id: 'psn_1', status: 'succeeded', weights_id: 'wts_1', note: 'ünïcødé ✓' };
    const enqueued = await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.succeeded', data });
    expect(enqueued).not.toBeNull();
    await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0.5 });

    const { attempts } = await receivedBy(scenario.id);
    expect(attempts).toHaveLength(1);
    const [attempt] = attempts;
    expect(attempt!.verifiedWith).toEqual([0]);
    expect(attempt!.answered).toBe(204);
    expect(attempt!.webhookId).toBe(enqueued!.deliveryId);
    expect(attempt!.webhookTimestamp).toBe(String(seconds(START)));
    expect(attempt!.webhookSignature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(attempt!.contentType).toBe('application/json');
    expect(JSON.parse(attempt!.body)).toEqual({ type: 'personalization.succeeded', timestamp: START.toISOString(), data });

    const row = await deliveryRow(enqueued!.deliveryId);
    expect(row).toMatchObject({ state: 'delivered', attempts: 1, lastStatus: 204, lastError: null, nextAttemptAt: null, dispatchToken: null });
    expect(row.deliveredAt).toEqual(START);
  });

  it('retries after receiver failures with backoff, then succeeds; same webhook-id and body, fresh timestamps', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup({ failFirst: 3, failStatus: 500 });
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'generation.failed', data: { id: 'gen_1' } }))!;
    const log = await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0.5 });

    // random 0.5 → half of each ceiling: 30 s, 120 s, 480 s.
    expect(log.handled.map((m) => m.delaySeconds)).toEqual([0, 30, 120, 480]);
    const { attempts } = await receivedBy(scenario.id);
    expect(attempts.map((a) => a.answered)).toEqual([500, 500, 500, 204]);
    expect(new Set(attempts.map((a) => a.webhookId))).toEqual(new Set([deliveryId]));
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    expect(attempts.map((a) => Number(a.webhookTimestamp) - seconds(START))).toEqual([0, 30, 150, 630]);
    expect(attempts.every((a) => a.verifiedWith.length === 1)).toBe(true);
    expect(await deliveryRow(deliveryId)).toMatchObject({ state: 'delivered', attempts: 4, lastStatus: 204 });
  });

  it(`dead-letters after ${WEBHOOK_MAX_ATTEMPTS} attempts spanning at least 24 h, bridging waits over 12 h; replay then delivers`, async () => {
    const { db, tenantId, clock, scenario, queue } = await setup({ failFirst: WEBHOOK_MAX_ATTEMPTS, failStatus: 503 });
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.failed', data: {} }))!;
    // Jitter drawing 0 every time is the worst case for the span guarantee.
    const log = await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0 });

    const { attempts } = await receivedBy(scenario.id);
    expect(attempts).toHaveLength(WEBHOOK_MAX_ATTEMPTS);
    const span = Number(attempts.at(-1)!.webhookTimestamp) - Number(attempts[0]!.webhookTimestamp);
    expect(span).toBeGreaterThanOrEqual(MIN_RETRY_SPAN_SECONDS);
    expect(log.handled.every((m) => m.delaySeconds <= MAX_QUEUE_DELAY_SECONDS)).toBe(true);
    // The last wait (~24 h) needed more than one queue hop.
    expect(log.handled.length).toBeGreaterThan(WEBHOOK_MAX_ATTEMPTS);
    expect(log.retried).toBe(0);

    const dead = await deliveryRow(deliveryId);
    expect(dead).toMatchObject({ state: 'dead', attempts: WEBHOOK_MAX_ATTEMPTS, lastStatus: 503, nextAttemptAt: null });
    expect(dead.deadAt).toEqual(clock.now());
    const listed = await listWebhookDeliveries(db, tenantId, { states: ['dead'], limit: 10 });
    expect(listed.rows.map((r) => r.id)).toEqual([deliveryId]);

    const replay = await replayWebhookDelivery({ db, queue, now: clock.now }, tenantId, deliveryId);
    expect(replay.kind).toBe('replayed');
    await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0 });
    const after = await receivedBy(scenario.id);
    expect(after.attempts).toHaveLength(WEBHOOK_MAX_ATTEMPTS + 1);
    expect(after.attempts.at(-1)).toMatchObject({ answered: 204, webhookId: deliveryId });
    expect(await deliveryRow(deliveryId)).toMatchObject({ state: 'delivered', attempts: 1, replayCount: 1 });
  });

  it('runs a deployment\'s compressed schedule (WEBHOOK_RETRY_SCALE=1/3600): the same attempts, the span in seconds, then a dead letter', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup({ failFirst: WEBHOOK_MAX_ATTEMPTS, failStatus: 503 });
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'generation.failed', data: {} }))!;
    const schedule = retryScheduleFromEnv({ WEBHOOK_RETRY_SCALE: String(1 / 3600) });
    // Jitter drawing 0 every time: every wait is 0 s but the last, which keeps the (scaled) 24 h span.
    const log = await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0, schedule });

    const { attempts } = await receivedBy(scenario.id);
    expect(attempts.map((a) => a.answered)).toEqual(Array(WEBHOOK_MAX_ATTEMPTS).fill(503));
    expect(log.handled.map((m) => m.delaySeconds)).toEqual([0, 0, 0, 0, 0, 0, 0, 24]);
    expect(Number(attempts.at(-1)!.webhookTimestamp) - Number(attempts[0]!.webhookTimestamp)).toBe(24);
    expect(await deliveryRow(deliveryId)).toMatchObject({ state: 'dead', attempts: WEBHOOK_MAX_ATTEMPTS, lastStatus: 503 });
  });

  it('honours Retry-After on 429', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup({ failFirst: 1, failStatus: 429, retryAfter: '900' });
    await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.started', data: {} });
    const log = await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0.5 });
    expect(log.handled.map((m) => m.delaySeconds)).toEqual([0, 900]);
  });

  it('never follows a redirect: a 3xx is a failed attempt', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup({ mode: 'redirect' });
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.started', data: {} }))!;
    await consumeWebhookBatch(
      { messages: [{ body: queue.sent.shift()!.body, attempts: 1, ack() {}, retry() {} }] },
      { db, queue, now: clock.now, policy: DEV_POLICY, keyring, random: () => 0.5 },
    );
    const received = await receivedBy(scenario.id);
    expect(received.attempts.map((a) => a.answered)).toEqual([307]);
    expect(received.redirectsFollowed).toBe(0);
    expect(await deliveryRow(deliveryId)).toMatchObject({ state: 'pending', attempts: 1, lastStatus: 307 });
    expect((await deliveryRow(deliveryId)).lastError).toMatch(/redirects are not followed/);
  });

  it('gives up on a receiver that does not answer within the timeout', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup({ mode: 'hang' });
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.started', data: {} }))!;
    await consumeWebhookBatch(
      { messages: [{ body: queue.sent.shift()!.body, attempts: 1, ack() {}, retry() {} }] },
      { db, queue, now: clock.now, policy: DEV_POLICY, keyring, random: () => 0.5, timeoutMs: 200 },
    );
    const row = await deliveryRow(deliveryId);
    expect(row).toMatchObject({ state: 'pending', attempts: 1, lastStatus: null });
    expect(row.lastError).toMatch(/timed out after 200 ms/);
    expect(queue.sent).toHaveLength(1);
  });

  it('checks the target again at send time: a forbidden URL is dead at once and nothing is sent', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup();
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.started', data: {} }))!;
    await drainQueue(queue, clock, { db, policy: PRODUCTION_TARGET_POLICY, keyring, random: () => 0.5 });
    expect((await receivedBy(scenario.id)).attempts).toHaveLength(0);
    const row = await deliveryRow(deliveryId);
    expect(row).toMatchObject({ state: 'dead', attempts: 1, lastStatus: null });
    expect(row.lastError).toMatch(/refused: only https/);
  });

  it('sends only the events the request asked for, and nothing without a webhook_url', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup();
    const deps = { db, queue, now: clock.now };
    const base = { tenantId, url: scenario.url, data: {} };
    expect(await enqueueWebhook(deps, { ...base, events: ['personalization.succeeded'], type: 'personalization.progress' })).toBeNull();
    expect(await enqueueWebhook(deps, { ...base, url: null, events: null, type: 'personalization.succeeded' })).toBeNull();
    expect(await enqueueWebhook(deps, { ...base, events: ['personalization.succeeded'], type: 'personalization.succeeded' })).not.toBeNull();
    const rows = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.tenantId, tenantId));
    expect(rows.map((r) => r.eventType)).toEqual(['personalization.succeeded']);
    expect(queue.sent).toHaveLength(1);
  });

  it('a duplicated or superseded queue message never causes a second POST', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup();
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.started', data: {} }))!;
    const message = queue.sent.shift()!.body;
    const deps = { db, queue, now: clock.now, policy: DEV_POLICY, keyring, random: () => 0.5 };
    let acks = 0;
    const twice = [0, 1].map(() => ({ body: message, attempts: 1, ack: () => void acks++, retry() {} }));
    await consumeWebhookBatch({ messages: twice }, deps);
    await consumeWebhookBatch({ messages: [twice[0]!] }, deps);
    expect(acks).toBe(3);
    expect((await receivedBy(scenario.id)).attempts).toHaveLength(1);
    // After a replay, the original message is stale too.
    await replayWebhookDelivery({ db, queue, now: clock.now }, tenantId, deliveryId);
    await consumeWebhookBatch({ messages: [twice[0]!] }, deps);
    expect((await receivedBy(scenario.id)).attempts).toHaveLength(1);
    await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0.5 });
    expect((await receivedBy(scenario.id)).attempts).toHaveLength(2);
  });

  it('the sweeper re-dispatches a delivery whose queue message was lost', async () => {
    const { db, tenantId, clock, scenario, queue } = await setup();
    // Before every other test's deliveries, so this sweep touches no row but its own.
    clock.current = new Date('2001-01-01T00:00:00Z');
    queue.failNext = true;
    const { deliveryId } = (await enqueueWebhook({ db, queue, now: clock.now }, { tenantId, url: scenario.url, events: null, type: 'personalization.canceled', data: {} }))!;
    expect(queue.sent).toHaveLength(0);
    expect(await deliveryRow(deliveryId)).toMatchObject({ state: 'pending', attempts: 0 });

    const ours = () => queue.sent.filter((m) => m.body.deliveryId === deliveryId);
    await redispatchOverdueWebhooks({ db, queue, now: clock.now });
    expect(ours()).toHaveLength(0);
    clock.advance(SWEEP_GRACE_SECONDS + 1);
    await redispatchOverdueWebhooks({ db, queue, now: clock.now });
    expect(queue.sent.map((m) => m.body.deliveryId)).toEqual([deliveryId]);
    await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0.5 });
    expect(await deliveryRow(deliveryId)).toMatchObject({ state: 'delivered', attempts: 1 });
  });

  it('retries a message whose row is not visible yet, then drops it; acks a malformed one', async () => {
    const { db, clock, queue } = await setup();
    const deps = { db, queue, now: clock.now, policy: DEV_POLICY, keyring };
    const calls: string[] = [];
    const message = (label: string, body: unknown, attempts: number) => ({
      body,
      attempts,
      ack: () => void calls.push(`${label}: ack`),
      retry: () => void calls.push(`${label}: retry`),
    });
    const unknown = { kind: 'webhook.attempt', deliveryId: 'msg_missing', token: 't' };
    await consumeWebhookBatch(
      { messages: [message('first delivery', unknown, 1), message('fourth delivery', unknown, 4), message('malformed', { nonsense: true }, 1)] },
      deps,
    );
    expect(calls.sort()).toEqual(['first delivery: retry', 'fourth delivery: ack', 'malformed: ack']);
  });

  it('lets the Queue redeliver when the database fails', async () => {
    // A real server refusing the connection (no such database): the failure comes from Postgres, not from a stand-in.
    const url = new URL((env as unknown as { DATABASE_URL: string }).DATABASE_URL);
    url.pathname = '/hdb_database_that_does_not_exist';
    const sql = postgres(url.toString(), { max: 1, fetch_types: false, onnotice: () => {} });
    const calls: string[] = [];
    await consumeWebhookBatch(
      { messages: [{ body: { kind: 'webhook.attempt', deliveryId: 'msg_x', token: 't' }, attempts: 1, ack: () => void calls.push('ack'), retry: () => void calls.push('retry') }] },
      { db: drizzle(sql), queue: new RecordingQueue(), policy: DEV_POLICY, keyring },
    );
    expect(calls).toEqual(['retry']);
    await sql.end({ timeout: 1 });
  });
});

describe('webhook secret rotation', () => {
  it('signs with both secrets during the overlap, so receivers on either key verify; only the new one afterwards', async () => {
    const { db, tenantId, clock, queue, secret: oldSecret } = await setup();
    clock.advance(60);
    const { created } = await rotateWebhookSecret(db, keyring, tenantId, clock.now(), 3600);
    const onOld = await receiverScenario({ secrets: [oldSecret] });
    const onNew = await receiverScenario({ secrets: [created.secret] });
    const deps = { db, queue, now: clock.now };
    const send = (url: string) => enqueueWebhook(deps, { tenantId, url, events: null, type: 'personalization.succeeded', data: {} });

    await send(onOld.url);
    await send(onNew.url);
    await drainQueue(queue, clock, { db, policy: DEV_POLICY, keyring, random: () => 0.5 });
    for (const scenario of [onOld, onNew]) {
      const [attempt] = (await receivedBy(scenario.id)).attempts;
      expect(attempt!.webhookSignature!.split(' ')).toHaveLength(2);
      expect(attempt!.verifiedWith).toEqual([0]);
      expect(attempt!.answered).toBe(204);
    }

    clock.advance(3600);
    const lateOld = await receiverScenario({ secrets: [oldSecret] });
    const lateNew = await receiverScenario({ secrets: [created.secret] });
    await send(lateOld.url);
    await send(lateNew.url);
    // One attempt each is enough to see the signatures.
    for (const message of queue.sent.splice(0)) {
      await consumeWebhookBatch({ messages: [{ body: message.body, attempts: 1, ack() {}, retry() {} }] }, { db, queue, now: clock.now, policy: DEV_POLICY, keyring, random: () => 0.5 });
    }
    const [oldAttempt] = (await receivedBy(lateOld.id)).attempts;
    const [newAttempt] = (await receivedBy(lateNew.id)).attempts;
    expect(oldAttempt!.webhookSignature!.split(' ')).toHaveLength(1);
    expect(oldAttempt!.verifiedWith).toEqual([]);
    expect(oldAttempt!.answered).toBe(401);
    expect(newAttempt!.verifiedWith).toEqual([0]);
  });

  it('an overlap of 0 revokes the previous secret at once', async () => {
    const { db, tenantId, clock, secret: oldSecret } = await setup();
    const { created } = await rotateWebhookSecret(db, keyring, tenantId, clock.now(), 0);
    const live = await ensureWebhookSecrets(db, keyring, tenantId, clock.now());
    expect(live.map((s) => s.secret)).toEqual([created.secret]);
    expect(live.map((s) => s.secret)).not.toContain(oldSecret);
    await expect(rotateWebhookSecret(db, keyring, tenantId, clock.now(), -1)).rejects.toThrow(RangeError);
  });

  it('concurrent first uses create exactly one secret per tenant', async () => {
    const { db } = handle;
    const tenantId = await createTenant(db);
    const results = await Promise.all([1, 2, 3].map(() => ensureWebhookSecrets(db, keyring, tenantId, START)));
    expect(new Set(results.map((r) => r[0]!.secret)).size).toBe(1);
  });
});

