// Admin: tenants, API keys (shown once, revocable) and the stored-weights query with filters, cursor and totals.
import { beforeAll, describe, expect, it } from 'vitest';
import type { PersonalizationMethodName } from '../../contract/index.ts';
import { jobs, weightFiles, weights } from '../../db/schema.ts';
import { newId } from '../../edge/lib/ids.ts';
import { call, createAdminKey, createTenant, expectError, withDb } from './helpers.ts';

let admin: string;

beforeAll(async () => {
  admin = await createAdminKey();
});

const personalizationParams = (method: PersonalizationMethodName) => ({
  method,
  finetune: { steps: 2, rank: 4, relax: 'lora' as const, seed: 0, identifier_token: '[V]' },
  outputs: [{ format: 'lidb' as const, dtype: 'fp16' as const }],
});

async function seedWeights(tenantId: string, rows: { method: PersonalizationMethodName; totalBytes: number; createdAt: Date }[]) {
  return withDb(async ({ db }) => {
    const ids: string[] = [];
    for (const row of rows) {
      const jobId = newId('personalization');
      await db.insert(jobs).values({ id: jobId, tenantId, kind: 'personalization', status: 'succeeded', method: row.method, params: personalizationParams(row.method), maxAttempts: 1 });
      const id = `wts_${jobId.slice(4)}`;
      await db.insert(weights).values({ id, tenantId, jobId, method: row.method, baseModelId: 'sd15', rank: 4, layers: ['l'], numParameters: 10, totalBytes: row.totalBytes, createdAt: row.createdAt });
      await db.insert(weightFiles).values({ weightsId: id, format: 'lidb', dtype: 'fp16', r2Key: `k/${id}`, byteSize: row.totalBytes, sha256: '0'.repeat(64) });
      ids.push(id);
    }
    return ids;
  });
}

describe('admin', () => {
  it('creates a tenant and a key that works once shown, and revokes it', async () => {
    await createTenant('an older tenant');
    const created = await call('/v1/admin/tenants', { method: 'POST', key: admin, json: { name: 'Acme' } });
    expect(created.status).toBe(201);
    const tenant = (await created.json()) as { id: string; name: string };
    expect(tenant.name).toBe('Acme');

    expect(((await (await call(`/v1/admin/tenants/${tenant.id}`, { key: admin })).json()) as { name: string }).name).toBe('Acme');
    // Other test files create tenants concurrently: walk the pages until ours shows up.
    type TenantPage = { data: { id: string }[]; next_cursor: string | null };
    let cursor: string | null = null;
    let pages = 0;
    let found = false;
    do {
      const res = await call(`/v1/admin/tenants?limit=5${cursor ? `&cursor=${cursor}` : ''}`, { key: admin });
      expect(res.status).toBe(200);
      const tenantPage = (await res.json()) as TenantPage;
      expect(tenantPage.data.length).toBeLessThanOrEqual(5);
      found = tenantPage.data.some((t) => t.id === tenant.id);
      cursor = tenantPage.next_cursor;
      pages++;
    } while (!found && cursor && pages < 100);
    expect(found).toBe(true);

    const keyRes = await call(`/v1/admin/tenants/${tenant.id}/keys`, { method: 'POST', key: admin, json: { name: 'ci' } });
    expect(keyRes.status).toBe(201);
    const key = (await keyRes.json()) as { id: string; key: string; display_prefix: string; role: string };
    expect(key.key).toMatch(/^hdb_live_[0-9A-Za-z]{32}$/);
    expect(key.key.startsWith(key.display_prefix)).toBe(true);
    expect((await call('/v1/subjects', { key: key.key })).status).toBe(200);

    const listed = (await (await call(`/v1/admin/tenants/${tenant.id}/keys`, { key: admin })).json()) as { data: Record<string, unknown>[] };
    expect(listed.data).toHaveLength(1);
    expect(listed.data[0]).not.toHaveProperty('key');
    expect(JSON.stringify(listed)).not.toContain(key.key);

    const revoked = await call(`/v1/admin/keys/${key.id}/revoke`, { method: 'POST', key: admin });
    expect(((await revoked.json()) as { revoked_at: string | null }).revoked_at).not.toBeNull();
    await expectError(await call('/v1/subjects', { key: key.key }), 401, 'revoked_api_key');
    expect((await call(`/v1/admin/keys/${key.id}/revoke`, { method: 'POST', key: admin })).status).toBe(200);
    await expectError(await call('/v1/admin/keys/key_missing/revoke', { method: 'POST', key: admin }), 404, 'not_found');
  });

  it('refuses bad admin input', async () => {
    await expectError(await call('/v1/admin/tenants', { method: 'POST', key: admin, json: { name: '' } }), 422, 'invalid_request');
    await expectError(await call('/v1/admin/tenants', { method: 'POST', key: admin, json: { name: 'x', id: 'ten_mine' } }), 422, 'invalid_request');
    await expectError(await call('/v1/admin/tenants/ten_missing/keys', { method: 'POST', key: admin, json: {} }), 404, 'not_found');
    await expectError(await call('/v1/admin/tenants/ten_missing', { key: admin }), 404, 'not_found');
    await expectError(await call('/v1/admin/weights?min_bytes=-1', { key: admin }), 422, 'invalid_request');
    await expectError(await call('/v1/admin/weights?created_after=yesterday', { key: admin }), 422, 'invalid_request');
  });

  it('queries stored weights across tenants with filters, cursor pagination and totals', async () => {
    const a = await createTenant('weights a');
    const b = await createTenant('weights b');
    const day = 86_400_000;
    const now = Date.now();
    const aIds = await seedWeights(a.id, [
      { method: 'hyperdreambooth', totalBytes: 60_000, createdAt: new Date(now - 3 * day) },
      { method: 'hyperdreambooth', totalBytes: 120_000, createdAt: new Date(now - 2 * day) },
      { method: 'dreambooth-lora', totalBytes: 3_000_000, createdAt: new Date(now - day) },
    ]);
    await seedWeights(b.id, [{ method: 'hyperdreambooth', totalBytes: 60_000, createdAt: new Date(now) }]);

    type Page = { data: { id: string; tenant_id: string; method: string; total_bytes: number }[]; next_cursor: string | null; totals: { count: number; total_bytes: number } };
    const query = async (qs: string) => (await (await call(`/v1/admin/weights?${qs}`, { key: admin })).json()) as Page;

    const first = await query(`tenant_id=${a.id}&limit=2`);
    expect(first.data.map((w) => w.id)).toEqual([aIds[2], aIds[1]]);
    expect(first.totals).toEqual({ count: 3, total_bytes: 3_180_000 });
    const second = await query(`tenant_id=${a.id}&limit=2&cursor=${first.next_cursor}`);
    expect(second.data.map((w) => w.id)).toEqual([aIds[0]]);
    expect(second.next_cursor).toBeNull();
    expect(second.totals.count).toBe(3);

    expect((await query(`tenant_id=${a.id}&method=hyperdreambooth`)).totals).toEqual({ count: 2, total_bytes: 180_000 });
    expect((await query(`tenant_id=${a.id}&min_bytes=100000&max_bytes=1000000`)).data.map((w) => w.id)).toEqual([aIds[1]]);
    const since = new Date(now - 2.5 * day).toISOString();
    const until = new Date(now - 0.5 * day).toISOString();
    expect((await query(`tenant_id=${a.id}&created_after=${since}&created_before=${until}`)).data.map((w) => w.id)).toEqual([aIds[2], aIds[1]]);
    const both = await query(`method=hyperdreambooth&limit=100`);
    expect(both.data.some((w) => w.tenant_id === a.id) && both.data.some((w) => w.tenant_id === b.id)).toBe(true);
  });
});
