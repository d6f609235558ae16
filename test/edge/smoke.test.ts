import { describe, expect, it } from 'vitest';
import { call, createTenant, expectError } from './helpers.ts';

describe('smoke', () => {
  it('answers health and lists subjects for a tenant', async () => {
    expect((await call('/healthz')).status).toBe(200);
    const tenant = await createTenant();
    const res = await call('/v1/subjects', { key: tenant.key });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: [], next_cursor: null });
    await expectError(await call('/v1/subjects'), 401, 'missing_api_key');
  });
});
