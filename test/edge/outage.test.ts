// While PostgreSQL cannot be reached the API answers 503 with Retry-After in the one error shape, and a request cut
// off by the outage is never half-applied: its writes and its remembered answer commit together or not at all.
// Real failures only: a port nobody listens on, and a backend terminated mid-request (pg_terminate_backend).
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { OpenAPIHono } from '@hono/zod-openapi';
import { and, eq, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { idempotencyKeys, subjects } from '../../db/schema.ts';
import { createApp } from '../../edge/app.ts';
import type { AppEnv } from '../../edge/app-types.ts';
import { openDb } from '../../edge/db/client.ts';
import { isDatabaseUnavailable } from '../../edge/db/unavailable.ts';
import { generateApiKey } from '../../edge/lib/api-keys.ts';
import { newId } from '../../edge/lib/ids.ts';
import { database } from '../../edge/middleware/database.ts';
import { DATABASE_RETRY_AFTER_SECONDS, handleError } from '../../edge/middleware/errors.ts';
import { IN_PROGRESS_TAKEOVER_SECONDS, idempotency } from '../../edge/middleware/idempotency.ts';
import { createTenant, testEnv, withDb } from './helpers.ts';

/** Port 1 on loopback: nothing listens there, so every connection is refused, as while PostgreSQL is down. */
const DOWN = { ...env, DATABASE_URL: 'postgres://hdb:hdb@127.0.0.1:1/hdb' };

async function request(app: { request: OpenAPIHono<AppEnv>['request'] }, path: string, init: RequestInit, bindings: object) {
  const ctx = createExecutionContext();
  const response = await app.request(path, init, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

async function expectUnavailable(response: Response) {
  expect(response.status).toBe(503);
  expect(response.headers.get('retry-after')).toBe(String(DATABASE_RETRY_AFTER_SECONDS));
  expect(await response.json()).toEqual({ error: { code: 'database_unavailable', message: expect.stringMatching(/retry/), details: null } });
}

describe('database outage', () => {
  it('answers 503 + Retry-After in the error shape for reads and writes while the database refuses connections', async () => {
    const app = createApp();
    const { key } = generateApiKey('tenant');
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    await expectUnavailable(await request(app, '/v1/subjects', { headers }, DOWN));
    await expectUnavailable(await request(app, '/v1/personalizations', { method: 'POST', headers, body: JSON.stringify({ subject_id: 'sub_x' }) }, DOWN));
    // The health check needs no database and stays up.
    expect((await request(app, '/healthz', {}, DOWN)).status).toBe(200);
  });

  it('tells an unreachable database from a bug: lost connections and shutdown codes are outages, a bad query is not', async () => {
    const { db } = openDb(testEnv);
    const errorOf = (query: ReturnType<typeof sql>) => db.execute(query).then(() => undefined, (error: unknown) => error);
    const terminated = await errorOf(sql`SELECT pg_terminate_backend(pg_backend_pid())`);
    const afterShutdown = await errorOf(sql`SELECT 1`);
    expect([terminated, afterShutdown].every(isDatabaseUnavailable)).toBe(true);
    const refused = await openDb({ DATABASE_URL: DOWN.DATABASE_URL }).db.execute(sql`SELECT 1`).then(() => undefined, (e: unknown) => e);
    expect(isDatabaseUnavailable(refused)).toBe(true);
    const { db: fresh, close } = openDb(testEnv);
    const syntax = await fresh.execute(sql`SELEKT 1`).then(() => undefined, (e: unknown) => e);
    expect(syntax).toBeDefined();
    expect(isDatabaseUnavailable(syntax)).toBe(false);
    await close();
  });

  it('a create cut off mid-request leaves nothing behind; its retry is refused while it may still run, then runs once', async () => {
    const tenant = await createTenant();
    let killMidRequest = true;
    // An idempotent create whose connection dies after its first write, as when PostgreSQL restarts mid-request.
    const app = new OpenAPIHono<AppEnv>();
    app.onError(handleError);
    app.use('*', database());
    app.use('*', async (c, next) => {
      c.set('principal', { keyId: 'key_test', role: 'tenant', tenantId: tenant.id });
      await next();
    });
    app.post('/things', idempotency(), async (c) => {
      const db = c.get('db');
      const [row] = await db.insert(subjects).values({ id: newId('subject'), tenantId: tenant.id, name: 'cut off' }).returning();
      if (killMidRequest) await db.execute(sql`SELECT pg_terminate_backend(pg_backend_pid())`);
      return c.json({ id: row!.id }, 201);
    });
    const idempotencyKey = `outage-${crypto.randomUUID()}`;
    const send = () => request(app, '/things', { method: 'POST', headers: { 'idempotency-key': idempotencyKey, 'content-type': 'application/json' }, body: '{}' }, env);
    const subjectsOfTenant = () => withDb(({ db }) => db.select().from(subjects).where(eq(subjects.tenantId, tenant.id)));

    await expectUnavailable(await send());
    expect(await subjectsOfTenant()).toEqual([]);
    // The key could not be released (the connection was gone): a retry now cannot tell it from a request still running.
    const early = await send();
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('idempotency_request_in_progress');

    // Once the first request cannot be running any more, the retry takes the key over and runs, exactly once.
    await withDb(({ db }) =>
      db
        .update(idempotencyKeys)
        .set({ createdAt: new Date(Date.now() - (IN_PROGRESS_TAKEOVER_SECONDS + 1) * 1000) })
        .where(and(eq(idempotencyKeys.tenantId, tenant.id), eq(idempotencyKeys.key, idempotencyKey))),
    );
    killMidRequest = false;
    const retried = await send();
    expect(retried.status).toBe(201);
    const { id } = (await retried.json()) as { id: string };
    expect((await subjectsOfTenant()).map((s) => s.id)).toEqual([id]);
    const replayed = await send();
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(await replayed.json()).toEqual({ id });
    expect(await subjectsOfTenant()).toHaveLength(1);
  });
});
