// An upload writes its photos to R2 holding no pooled database connection (a connection held across the write starved
// the pool: bench/RESULTS.md), and is still never half-applied: its rows commit after the objects exist, and the
// objects are removed again when the rows do not commit. Real workerd, real PostgreSQL and local R2; the bucket is
// wrapped only to hold or fail a write at a chosen moment.
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { and, eq, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { subjectImages, subjects } from '../../db/schema.ts';
import { createApp } from '../../edge/app.ts';
import type { Env } from '../../edge/env.ts';
import { createTenant, testEnv, withDb, type TestTenant } from './helpers.ts';
import { file, form, png } from './images.ts';

type Subject = { id: string; images: { id: string }[] };

/** The test's R2 bucket, with `onPut` run before each write (it may wait, or throw to fail the write). */
function bucketWith(onPut: (key: string) => Promise<void>): R2Bucket {
  const bucket = testEnv.BUCKET;
  return new Proxy(bucket, {
    get(target, property) {
      if (property === 'put') {
        return async (key: string, ...rest: Parameters<R2Bucket['put']> extends [string, ...infer Tail] ? Tail : never) => {
          await onPut(key);
          return target.put(key, ...rest);
        };
      }
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Through the whole app (auth, idempotency, routes) with these bindings; waits for its waitUntil work as well. */
async function send(bindings: Env, path: string, init: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await createApp().request(path, init, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

function uploadInit(tenant: TestTenant, files: File[], headers: Record<string, string> = {}): RequestInit {
  return { method: 'POST', headers: { authorization: `Bearer ${tenant.key}`, ...headers }, body: form(files, { name: 'staged' }) };
}

/** Backends PostgreSQL serves for clients that named themselves `applicationName`. */
function backendsOf(applicationName: string): Promise<number> {
  return withDb(async ({ db }) => {
    const rows = await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${applicationName}`);
    return rows[0]!.n;
  });
}

async function objectsOf(tenant: TestTenant): Promise<string[]> {
  return (await testEnv.BUCKET.list({ prefix: `tenants/${tenant.id}/` })).objects.map((object) => object.key);
}

async function subjectsOf(tenant: TestTenant) {
  return withDb(({ db }) => db.select().from(subjects).where(eq(subjects.tenantId, tenant.id)));
}

/** The subject id in a photo's R2 key, `tenants/<tenant>/subjects/<subject>/<image>.<ext>`. */
const subjectOfKey = (key: string) => key.split('/')[3]!;

describe('uploads and the database connection', () => {
  it.each([
    ['without', {}],
    ['with', { 'idempotency-key': `held-${crypto.randomUUID()}` }],
  ])('holds no database connection while the photos are written to R2 (%s an Idempotency-Key)', async (_, headers) => {
    const tenant = await createTenant();
    // A fresh key: its first use is looked up in the database, so the request has had a connection before the write.
    const applicationName = `upload-${crypto.randomUUID()}`;
    const writing = gate();
    const proceed = gate();
    const bindings = {
      ...env,
      DATABASE_URL: `${testEnv.DATABASE_URL}${testEnv.DATABASE_URL!.includes('?') ? '&' : '?'}application_name=${applicationName}`,
      BUCKET: bucketWith(async () => {
        writing.open();
        await proceed.opened;
      }),
    } as Env;
    const response = send(bindings, '/v1/subjects', uploadInit(tenant, [file(png(64, 64), 'a.png')], headers));

    await writing.opened;
    // Closing the given-back connection takes a round trip of its own; it must not wait for the write.
    await expect.poll(() => backendsOf(applicationName), { timeout: 5_000, interval: 50 }).toBe(0);
    proceed.open();

    const created = await response;
    expect(created.status).toBe(201);
    const subject = (await created.json()) as Subject;
    expect(await objectsOf(tenant)).toEqual([`tenants/${tenant.id}/subjects/${subject.id}/${subject.images[0]!.id}.png`]);
  });

  it('removes the written photos when the rows fail to commit, and stores nothing', async () => {
    const tenant = await createTenant();
    // While the photo is written, another row takes the subject's id: the upload's insert then fails.
    const bindings = {
      ...env,
      BUCKET: bucketWith(async (key) => {
        await withDb(({ db }) => db.insert(subjects).values({ id: subjectOfKey(key), tenantId: tenant.id, name: 'taken' }).onConflictDoNothing());
      }),
    } as Env;
    const response = await send(bindings, '/v1/subjects', uploadInit(tenant, [file(png(64, 64), 'a.png'), file(png(64, 64), 'b.png')]));
    expect(response.status).toBe(500);
    await response.text();
    expect(await objectsOf(tenant)).toEqual([]);
    expect((await subjectsOf(tenant)).map((s) => s.name)).toEqual(['taken']);
    expect(await withDb(({ db }) => db.select().from(subjectImages).where(eq(subjectImages.tenantId, tenant.id)))).toEqual([]);
  });

  it('removes the photos already written when another write fails', async () => {
    const tenant = await createTenant();
    let writes = 0;
    const bindings = {
      ...env,
      BUCKET: bucketWith(async () => {
        if (++writes === 2) throw new Error('R2 write failed');
      }),
    } as Env;
    const response = await send(bindings, '/v1/subjects', uploadInit(tenant, [file(png(64, 64), 'a.png'), file(png(64, 64), 'b.png')]));
    expect(response.status).toBe(500);
    await response.text();
    expect(await objectsOf(tenant)).toEqual([]);
    expect(await subjectsOf(tenant)).toEqual([]);
  });

  it('adding photos to a subject deleted during the write answers 404 and leaves only the subject’s earlier photos', async () => {
    const tenant = await createTenant();
    const created = await send(env as Env, '/v1/subjects', uploadInit(tenant, [file(png(64, 64), 'a.png')]));
    expect(created.status).toBe(201);
    const subject = (await created.json()) as Subject;
    const before = await objectsOf(tenant);
    const bindings = {
      ...env,
      BUCKET: bucketWith(async () => {
        await withDb(({ db }) => db.update(subjects).set({ deletedAt: new Date() }).where(and(eq(subjects.id, subject.id), eq(subjects.tenantId, tenant.id))));
      }),
    } as Env;
    const added = await send(bindings, `/v1/subjects/${subject.id}/images`, uploadInit(tenant, [file(png(64, 64), 'b.png')], { 'idempotency-key': `gone-${crypto.randomUUID()}` }));
    expect(added.status).toBe(404);
    await added.text();
    expect(await objectsOf(tenant)).toEqual(before);
  });
});
