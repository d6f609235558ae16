// Helpers for edge tests inside workerd: direct database access, tenants and keys, requests through the Worker.
import { exports } from 'cloudflare:workers';
import { env } from 'cloudflare:workers';
import { tenants } from '../../db/schema.ts';
import { openDb, type DbHandle } from '../../edge/db/client.ts';
import type { Env } from '../../edge/env.ts';
import { newId } from '../../edge/lib/ids.ts';
import { createApiKey } from '../../edge/lib/api-keys.ts';

export const testEnv = env as unknown as Env;

export async function withDb<T>(fn: (handle: DbHandle) => Promise<T>): Promise<T> {
  const handle = openDb(testEnv);
  try {
    return await fn(handle);
  } finally {
    await handle.close();
  }
}

export type TestTenant = { id: string; key: string; keyId: string };

export async function createTenant(name = 'test tenant'): Promise<TestTenant> {
  return withDb(async ({ db }) => {
    const [tenant] = await db.insert(tenants).values({ id: newId('tenant'), name }).returning();
    const { row, key } = await createApiKey(db, { tenantId: tenant!.id, role: 'tenant', name: 'test' });
    return { id: tenant!.id, key, keyId: row.id };
  });
}

export async function createAdminKey(): Promise<string> {
  return withDb(async ({ db }) => (await createApiKey(db, { tenantId: null, role: 'admin', name: 'test admin' })).key);
}

export const BASE = 'http://edge.test';

/**
 * A request through the Worker under test. Read every response body (text/json/arrayBuffer): cancelling one
 * (`res.body.cancel()`) leaves the Worker's side of the stream open and stalls the pool when the file ends.
 */
export function call(path: string, init: RequestInit & { key?: string; json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set('authorization', `Bearer ${init.key}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const worker = (exports as unknown as { default: Fetcher }).default;
  return worker.fetch(new Request(`${BASE}${path}`, { ...init, headers, body }));
}

export async function expectError(response: Response, status: number, code: string): Promise<{ error: { code: string; message: string; details: unknown } }> {
  const body = (await response.json()) as { error: { code: string; message: string; details: unknown } };
  if (response.status !== status || body.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${response.status} ${JSON.stringify(body)}`);
  }
  return body;
}
