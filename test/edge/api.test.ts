// Cross-cutting API behaviour: authentication and roles, the one error shape, idempotency, body limits, OpenAPI.
import { eq } from 'drizzle-orm';
import { createExecutionContext } from 'cloudflare:test';
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AppEnv } from '../../edge/app-types.ts';
import { apiKeyCache } from '../../edge/lib/api-key-cache.ts';
import { handleError } from '../../edge/middleware/errors.ts';
import { rateLimit, RATE_LIMIT_PERIOD_SECONDS } from '../../edge/middleware/rate-limit.ts';
import { apiKeys } from '../../db/schema.ts';
import { call, createAdminKey, createTenant, expectError, testEnv, withDb, type TestTenant } from './helpers.ts';
import { file, form, png } from './images.ts';

let owner: TestTenant;
let stranger: TestTenant;
let subjectId: string;

beforeAll(async () => {
  owner = await createTenant('api owner');
  stranger = await createTenant('api stranger');
  const res = await call('/v1/subjects', { method: 'POST', key: owner.key, body: form([file(png(256, 256), 'face.png')]) });
  subjectId = ((await res.json()) as { id: string }).id;
});

const WEBHOOK_URL = 'http://127.0.0.1:9/hooks';

describe('authentication', () => {
  it('needs a well-formed, known, unrevoked key', async () => {
    await expectError(await call('/v1/personalizations'), 401, 'missing_api_key');
    await expectError(await call('/v1/personalizations', { headers: { authorization: 'Basic abc' } }), 401, 'missing_api_key');
    await expectError(await call('/v1/personalizations', { key: 'hdb_live_short' }), 401, 'invalid_api_key');
    await expectError(await call('/v1/personalizations', { key: `hdb_live_${'A'.repeat(32)}` }), 401, 'invalid_api_key');
    const tenant = await createTenant('revoked');
    expect((await call('/v1/personalizations', { key: tenant.key })).status).toBe(200);
    await withDb(({ db }) => db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, tenant.keyId)));
    // A revocation made elsewhere (another isolate, the database) reaches this isolate when its cached entry expires,
    // at most API_KEY_CACHE_TTL_MS later (the expiry is tested with a clock in edge/lib/api-key-cache.test.ts);
    // forgetting the entry stands in for that expiry.
    apiKeyCache.forgetKey(tenant.keyId);
    await expectError(await call('/v1/personalizations', { key: tenant.key }), 401, 'revoked_api_key');
  });

  it('keeps roles apart: tenant keys cannot reach admin, admin keys without a tenant cannot reach tenant data', async () => {
    const admin = await createAdminKey();
    await expectError(await call('/v1/admin/tenants', { key: owner.key }), 403, 'forbidden');
    await expectError(await call('/v1/subjects', { key: admin }), 403, 'forbidden');
    expect((await call('/v1/admin/tenants', { key: admin })).status).toBe(200);
  });

  it('records when a key was last used', async () => {
    const tenant = await createTenant('last used');
    await call('/v1/subjects', { key: tenant.key });
    await expect
      .poll(async () => (await withDb(({ db }) => db.select().from(apiKeys).where(eq(apiKeys.id, tenant.keyId))))[0]?.lastUsedAt, { timeout: 5000 })
      .toBeInstanceOf(Date);
  });
});

describe('personalizations API', () => {
  it('creates with defaults and lists with cursor pagination', async () => {
    const tenant = await createTenant('psn list');
    const subject = ((await (await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(png(64, 64), 'a.png')]) })).json()) as { id: string }).id;
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call('/v1/personalizations', { method: 'POST', key: tenant.key, json: { subject_id: subject } });
      expect(res.status).toBe(202);
      const body = (await res.json()) as { id: string; method: string; finetune: Record<string, unknown>; outputs: unknown[]; progress: unknown };
      expect(body).toMatchObject({ method: 'hyperdreambooth', finetune: { steps: 25, rank: 4, relax: 'lora' }, progress: { step: 0, total_steps: null } });
      expect(body.outputs).toHaveLength(4);
      created.push(body.id);
    }
    const page1 = (await (await call('/v1/personalizations?limit=2', { key: tenant.key })).json()) as { data: { id: string }[]; next_cursor: string };
    expect(page1.data.map((p) => p.id)).toEqual([created[2], created[1]]);
    const page2 = (await (await call(`/v1/personalizations?limit=2&cursor=${page1.next_cursor}`, { key: tenant.key })).json()) as { data: { id: string }[]; next_cursor: null };
    expect(page2).toEqual({ data: [expect.objectContaining({ id: created[0] })], next_cursor: null });
    const filtered = (await (await call(`/v1/personalizations?subject_id=${subject}&status=succeeded`, { key: tenant.key })).json()) as { data: unknown[] };
    expect(filtered.data).toEqual([]);
  });

  it('refuses malformed JSON, wrong types, unknown fields, unknown and foreign subjects', async () => {
    const post = (body: string | object, key = owner.key) =>
      call('/v1/personalizations', typeof body === 'string' ? { method: 'POST', key, body, headers: { 'content-type': 'application/json' } } : { method: 'POST', key, json: body });
    await expectError(await post('{"subject_id": '), 400, 'invalid_json');
    const wrongType = await expectError(await post({ subject_id: 42 }), 422, 'invalid_request');
    expect(wrongType.error.details).toEqual([expect.objectContaining({ path: 'subject_id' })]);
    await expectError(await post({ subject_id: subjectId, method: 'magic' }), 422, 'invalid_request');
    await expectError(await post({ subject_id: subjectId, finetune: { steps: -1 } }), 422, 'invalid_request');
    await expectError(await post({ subject_id: subjectId, tenant_id: stranger.id }), 422, 'invalid_request');
    await expectError(await post({ subject_id: subjectId, webhook_events: [] }), 422, 'invalid_request');
    await expectError(await post({ subject_id: 'sub_0000000000000000000000000000' }), 404, 'not_found');
    await expectError(await post({ subject_id: subjectId }, stranger.key), 404, 'not_found');
    await expectError(await call('/v1/personalizations', { method: 'POST', key: owner.key, body: 'subject_id=x', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    const tooBig = JSON.stringify({ subject_id: subjectId, padding: 'x'.repeat(70 * 1024) });
    await expectError(await post(tooBig), 413, 'payload_too_large');
  });

  it('refuses webhook targets that are not public https', async () => {
    for (const url of ['http://example.com/hook', 'https://10.0.0.1/hook', 'https://169.254.169.254/latest/meta-data', 'https://[::1]/hook', 'https://localhost/hook']) {
      const res = await call('/v1/personalizations', { method: 'POST', key: owner.key, json: { subject_id: subjectId, webhook_url: url } });
      await expectError(res, 422, 'invalid_webhook_url');
    }
  });

  it('honours Idempotency-Key: same body → same answer, different body → 409', async () => {
    const key = `psn-${crypto.randomUUID()}`;
    const body = { subject_id: subjectId, finetune: { steps: 2 }, webhook_url: WEBHOOK_URL };
    const first = await call('/v1/personalizations', { method: 'POST', key: owner.key, json: body, headers: { 'idempotency-key': key } });
    const again = await call('/v1/personalizations', { method: 'POST', key: owner.key, json: body, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
    const different = await call('/v1/personalizations', { method: 'POST', key: owner.key, json: { ...body, finetune: { steps: 3 } }, headers: { 'idempotency-key': key } });
    await expectError(different, 409, 'idempotency_key_reused');
    // Keys are per tenant: the same key from another tenant is another request.
    const strangerSubject = ((await (await call('/v1/subjects', { method: 'POST', key: stranger.key, body: form([file(png(64, 64), 'a.png')]) })).json()) as { id: string }).id;
    const theirs = await call('/v1/personalizations', { method: 'POST', key: stranger.key, json: { subject_id: strangerSubject }, headers: { 'idempotency-key': key } });
    expect(theirs.status).toBe(202);
    // A rejected request does not pin its key.
    const retryKey = `psn-${crypto.randomUUID()}`;
    await expectError(await call('/v1/personalizations', { method: 'POST', key: owner.key, json: { subject_id: 'nope' }, headers: { 'idempotency-key': retryKey } }), 404, 'not_found');
    expect((await call('/v1/personalizations', { method: 'POST', key: owner.key, json: body, headers: { 'idempotency-key': retryKey } })).status).toBe(202);
  });

  it("hides another tenant's personalizations", async () => {
    const res = await call('/v1/personalizations', { method: 'POST', key: owner.key, json: { subject_id: subjectId } });
    const { id } = (await res.json()) as { id: string };
    await expectError(await call(`/v1/personalizations/${id}`, { key: stranger.key }), 404, 'not_found');
    const theirs = (await (await call('/v1/personalizations', { key: stranger.key })).json()) as { data: { id: string }[] };
    expect(theirs.data.map((p) => p.id)).not.toContain(id);
    await expectError(await call('/v1/personalizations/psn_unknown', { key: owner.key }), 404, 'not_found');
  });
});

describe('weights API', () => {
  it('404s for unknown weights and refuses unknown formats', async () => {
    await expectError(await call('/v1/weights/wts_0000000000000000000000000000', { key: owner.key }), 404, 'not_found');
    await expectError(await call('/v1/weights/wts_0000000000000000000000000000/download?format=ckpt', { key: owner.key }), 422, 'invalid_request');
    expect((await call('/v1/weights', { key: owner.key })).status).toBe(200);
  });
});

describe('documents', () => {
  it('serves an OpenAPI 3.1 document generated from the schemas, and a docs page', async () => {
    const res = await call('/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    expect(doc.openapi).toBe('3.1.0');
    for (const path of ['/v1/subjects', '/v1/personalizations', '/v1/personalizations/{id}/cancel', '/v1/weights/{id}/download', '/v1/generations', '/v1/admin/weights', '/v1/admin/tenants/{id}/keys']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(doc.components.schemas).toHaveProperty('Personalization');
    expect(doc.components.schemas).toHaveProperty('Error');
    expect(JSON.stringify(doc.paths)).not.toContain('/internal/');
    const docs = await call('/docs');
    expect(docs.headers.get('content-type')).toContain('text/html');
    expect(await docs.text()).toContain('/v1/openapi.json');
  });

  it('answers unknown routes in the error shape', async () => {
    await expectError(await call('/v2/nothing'), 404, 'not_found');
  });
});

describe('rate limit', () => {
  // The middleware against the real Rate Limiting binding, on a bare app: hundreds of full requests (each with its own
  // Postgres client) would only slow the suite down.
  it('answers 429 with Retry-After once a key exceeds its requests per minute, other keys unaffected', async () => {
    const app = new Hono<AppEnv>();
    app.onError(handleError);
    app.use('*', async (c, next) => {
      c.set('principal', { keyId: c.req.header('x-key') ?? '', role: 'tenant', tenantId: 'ten_x' });
      await next();
    });
    app.use('*', rateLimit());
    app.get('/ping', (c) => c.text('pong'));
    const keyId = `key_${crypto.randomUUID()}`;
    const ctx = createExecutionContext();
    let limited: Response | null = null;
    for (let i = 0; i < 400 && !limited; i++) {
      const res = await app.fetch(new Request('http://edge.test/ping', { headers: { 'x-key': keyId } }), testEnv, ctx);
      if (res.status === 429) limited = res;
      else await res.text();
    }
    expect(limited, 'no 429 after 400 requests').not.toBeNull();
    expect(limited!.headers.get('retry-after')).toBe(String(RATE_LIMIT_PERIOD_SECONDS));
    await expectError(limited!, 429, 'rate_limited');
    const other = await app.fetch(new Request('http://edge.test/ping', { headers: { 'x-key': `${keyId}-other` } }), testEnv, ctx);
    expect(other.status).toBe(200);
  });
});
