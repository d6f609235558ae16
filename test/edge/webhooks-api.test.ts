// Webhooks through the whole Worker: webhook_url policy on the create endpoints, the OpenAPI document, and one event
// travelling through the real `webhooks` Queue binding to the Worker's queue() handler and on to the real receiver.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { enqueueWebhook } from '../../edge/webhooks/enqueue.ts';
import type { WebhookQueue } from '../../edge/webhooks/queue-message.ts';
import { call, createTenant, expectError, withDb } from './helpers.ts';
import { receivedBy, receiverScenario } from './webhooks-support.ts';

const SSRF_ATTEMPTS = [
  'https://169.254.169.254/latest/meta-data/',
  'https://metadata.google.internal/computeMetadata/v1/',
  'https://[fd00:ec2::254]/',
  'https://2130706433/',
  'https://0x7f.1/',
  'https://[::ffff:10.0.0.1]/',
  'https://10.1.2.3/hook',
  'https://100.100.100.200/',
  'https://user:pw@hooks.example.com/',
  'https://hooks.example.com:6379/',
  'http://hooks.example.com/hook', // plain http off loopback, even with the dev setting on
  'ftp://hooks.example.com/',
];

describe('webhook_url on create requests', () => {
  it.each(SSRF_ATTEMPTS)('POST /v1/personalizations refuses %s with 422 invalid_webhook_url', async (url) => {
    const tenant = await createTenant('ssrf personalization');
    const response = await call('/v1/personalizations', { method: 'POST', key: tenant.key, json: { subject_id: 'sub_unknown', webhook_url: url } });
    await expectError(response, 422, 'invalid_webhook_url');
  });

  it('POST /v1/generations applies the same policy', async () => {
    const tenant = await createTenant('ssrf generation');
    for (const url of SSRF_ATTEMPTS.slice(0, 4)) {
      const response = await call('/v1/generations', {
        method: 'POST',
        key: tenant.key,
        json: { weights_id: 'wts_unknown', prompt: 'a [V] face', webhook_url: url },
      });
      await expectError(response, 422, 'invalid_webhook_url');
    }
  });

  it('refuses unknown or empty webhook_events', async () => {
    const tenant = await createTenant('bad events');
    for (const events of [['personalization.exploded'], [], 'personalization.succeeded']) {
      const response = await call('/v1/personalizations', {
        method: 'POST',
        key: tenant.key,
        json: { subject_id: 'sub_unknown', webhook_url: 'https://hooks.example.com/h', webhook_events: events },
      });
      expect(response.status, JSON.stringify(events)).toBe(422);
    }
  });
});

describe('webhooks in the Worker', () => {
  it('the OpenAPI document describes the webhook endpoints', async () => {
    const document = (await (await call('/v1/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/v1/webhooks/deliveries',
        '/v1/webhooks/dead-letters',
        '/v1/webhooks/deliveries/{id}',
        '/v1/webhooks/deliveries/{id}/replay',
        '/v1/webhooks/secrets',
        '/v1/webhooks/secrets/rotate',
      ]),
    );
  });

  it('an event travels through the webhooks Queue to the receiver, signed with the secret the API shows', async () => {
    const tenant = await createTenant('queue path');
    const secrets = (await (await call('/v1/webhooks/secrets', { key: tenant.key })).json()) as { data: { secret: string }[] };
    const scenario = await receiverScenario({ secrets: [secrets.data[0]!.secret] });
    const queue = (env as unknown as { WEBHOOKS_QUEUE: WebhookQueue }).WEBHOOKS_QUEUE;
    const enqueued = await withDb(({ db }) =>
      enqueueWebhook({ db, queue }, { tenantId: tenant.id, url: scenario.url, events: null, type: 'generation.succeeded', data: { id: 'gen_q' } }),
    );

    // The Queue delivers on its own schedule (batch timeout 1 s); wait for the receiver to see the event.
    let attempts = (await receivedBy(scenario.id)).attempts;
    for (let waited = 0; attempts.length === 0 && waited < 20_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      attempts = (await receivedBy(scenario.id)).attempts;
    }
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ webhookId: enqueued!.deliveryId, verifiedWith: [0], answered: 204 });

    let delivery = await (await call(`/v1/webhooks/deliveries/${enqueued!.deliveryId}`, { key: tenant.key })).json();
    for (let waited = 0; (delivery as { state: string }).state !== 'delivered' && waited < 5_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      delivery = await (await call(`/v1/webhooks/deliveries/${enqueued!.deliveryId}`, { key: tenant.key })).json();
    }
    expect(delivery).toMatchObject({ state: 'delivered', attempts: 1, last_status: 204, payload: { type: 'generation.succeeded', data: { id: 'gen_q' } } });
  });
});
