// Webhook signing secrets at rest: sealed under the Worker's key-encryption keys, never readable from a dump of
// PostgreSQL alone; clear rows from before sealing keep signing until the re-seal step seals them; the keys rotate
// (old keys open, the active key seals, a re-seal moves rows). Real Postgres, real WebCrypto in workerd.
import { env } from 'cloudflare:test';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookSecrets } from '../../db/schema.ts';
import type { Env } from '../../edge/env.ts';
import { generateSealingKey, parseKeyring, UnsealError } from '../../edge/lib/sealing.ts';
import { generateWebhookSecret, webhookSecretKey } from '../../edge/webhooks/secret.ts';
import {
  ensureWebhookSecrets,
  liveWebhookSecrets,
  resealWebhookSecrets,
  rotateWebhookSecret,
  webhookKeyringFromEnv,
} from '../../edge/webhooks/secrets-store.ts';
import { call, createAdminKey, createTenant as createTenantWithKey, expectError } from './helpers.ts';
import { createTenant, openTestDb } from './webhooks-support.ts';

// Rows of this file are dated long before any other test's, so a re-seal batch (oldest first) reaches them first;
// the keys below are this file's own, so rows of other files are never moved by it (they count as missing keys).
const LONG_AGO = new Date('2001-01-01T00:00:00Z');

let handle: ReturnType<typeof openTestDb>;
beforeAll(() => {
  handle = openTestDb();
});
afterAll(() => handle.close());

async function rowsOf(tenantId: string) {
  return handle.db.select().from(webhookSecrets).where(eq(webhookSecrets.tenantId, tenantId));
}

/** Everything a dump holds about the tenant's secrets, as one string. */
async function dumpOf(tenantId: string): Promise<string> {
  const rows = await handle.db.execute(sql`SELECT row_to_json(w)::text AS row FROM webhook_secrets w WHERE tenant_id = ${tenantId}`);
  return rows.map((r) => String(r.row)).join('\n');
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

describe('webhook secrets at rest', () => {
  it('a database dump holds neither the secret nor its key material, and does not open without the Worker key', async () => {
    const { db } = handle;
    const keyring = await webhookKeyringFromEnv(env as unknown as Env);
    const tenantId = await createTenant(db);
    const [live] = await ensureWebhookSecrets(db, keyring, tenantId, new Date());
    const secret = live!.secret;
    expect(secret).toMatch(/^whsec_/);

    const dump = await dumpOf(tenantId);
    const material = secret.slice('whsec_'.length);
    expect(dump).not.toContain(material);
    expect(dump).not.toContain(hex(webhookSecretKey(secret)));
    const [row] = await rowsOf(tenantId);
    expect(row).toMatchObject({ secret: null, keyId: keyring.activeKeyId });
    expect(row!.sealedSecret).toMatch(/^[A-Za-z0-9+/]+=*$/);

    // Someone with the dump but a guessed key (even with the right id) cannot recover it.
    const guessed = await parseKeyring(generateSealingKey(keyring.activeKeyId));
    await expect(liveWebhookSecrets(db, guessed, tenantId, new Date())).rejects.toThrow(UnsealError);
    // Nor by pasting the sealed value onto a row of their own tenant.
    const other = await createTenant(db);
    await db.insert(webhookSecrets).values({ id: 'whs_pasted_' + other, tenantId: other, sealedSecret: row!.sealedSecret, keyId: row!.keyId, createdAt: new Date() });
    await expect(liveWebhookSecrets(db, keyring, other, new Date())).rejects.toThrow(/does not authenticate/);
    await db.delete(webhookSecrets).where(eq(webhookSecrets.tenantId, other));
  });

  it('a clear row from before sealing keeps signing, and the re-seal seals it without changing the secret', async () => {
    const { db } = handle;
    const keyring = await webhookKeyringFromEnv(env as unknown as Env);
    const tenantId = await createTenant(db);
    const clear = generateWebhookSecret();
    // What migration 0002 leaves of a row written before it: the secret in clear, no sealed value.
    await db.insert(webhookSecrets).values({ id: `whs_legacy_${tenantId}`, tenantId, secret: clear, createdAt: LONG_AGO });
    expect((await liveWebhookSecrets(db, keyring, tenantId, new Date())).map((s) => s.secret)).toEqual([clear]);

    await resealWebhookSecrets(db, keyring);
    const [row] = await rowsOf(tenantId);
    expect(row).toMatchObject({ secret: null, keyId: keyring.activeKeyId });
    expect(await dumpOf(tenantId)).not.toContain(clear.slice('whsec_'.length));
    expect((await liveWebhookSecrets(db, keyring, tenantId, new Date())).map((s) => s.secret)).toEqual([clear]);
    // A row can only be one or the other.
    await expect(db.update(webhookSecrets).set({ secret: clear }).where(eq(webhookSecrets.tenantId, tenantId))).rejects.toThrow();
  });

  it('rotates the key: the old key still opens, new secrets use the new key, a re-seal moves every row', async () => {
    const { db } = handle;
    const k1 = generateSealingKey('rot1');
    const k2 = generateSealingKey('rot2');
    const before = await parseKeyring(k1);
    const tenantId = await createTenant(db);
    const [first] = await ensureWebhookSecrets(db, before, tenantId, LONG_AGO);
    expect((await rowsOf(tenantId)).map((r) => r.keyId)).toEqual(['rot1']);

    // Step 1 of a rotation: the new key first, the old one kept.
    const during = await parseKeyring(`${k2},${k1}`);
    expect((await liveWebhookSecrets(db, during, tenantId, LONG_AGO)).map((s) => s.secret)).toEqual([first!.secret]);
    const { created } = await rotateWebhookSecret(db, during, tenantId, LONG_AGO, 3600);
    const byId = new Map((await rowsOf(tenantId)).map((r) => [r.id, r.keyId]));
    expect(byId.get(created.id)).toBe('rot2');
    expect(byId.get(first!.id)).toBe('rot1');

    // Before the re-seal, dropping the old key would strand the row: the re-seal names it and leaves it alone.
    const tooEarly = await resealWebhookSecrets(db, await parseKeyring(k2));
    expect(tooEarly.missingKeys.rot1).toBeGreaterThanOrEqual(1);
    expect((await rowsOf(tenantId)).find((r) => r.id === first!.id)).toMatchObject({ keyId: 'rot1' });

    // Step 2: the re-seal moves the rows to the active key.
    const report = await resealWebhookSecrets(db, during);
    expect(report.resealed).toBeGreaterThanOrEqual(1);
    expect(report.missingKeys.rot1).toBeUndefined();
    expect((await rowsOf(tenantId)).map((r) => r.keyId)).toEqual(['rot2', 'rot2']);

    // Step 3: the old key can go; every secret still opens, unchanged.
    const after = await parseKeyring(k2);
    const live = await liveWebhookSecrets(db, after, tenantId, LONG_AGO);
    expect(live.map((s) => s.secret)).toEqual([created.secret, first!.secret]);
  });

  it('an admin runs the re-seal through the API; a tenant may not', async () => {
    const { db } = handle;
    const tenant = await createTenantWithKey();
    const clear = generateWebhookSecret();
    await db.insert(webhookSecrets).values({ id: `whs_api_${tenant.id}`, tenantId: tenant.id, secret: clear, createdAt: LONG_AGO });
    await expectError(await call('/v1/admin/webhook-secrets/reseal', { method: 'POST', key: tenant.key }), 403, 'forbidden');

    const response = await call('/v1/admin/webhook-secrets/reseal', { method: 'POST', key: await createAdminKey() });
    expect(response.status).toBe(200);
    const report = (await response.json()) as { resealed: number; remaining: number; missing_keys: Record<string, number> };
    expect(report.resealed).toBeGreaterThanOrEqual(1);
    expect(typeof report.remaining).toBe('number');
    const [row] = await rowsOf(tenant.id);
    expect(row).toMatchObject({ secret: null, keyId: (await webhookKeyringFromEnv(env as unknown as Env)).activeKeyId });
    // The tenant sees the same secret as before: its receivers need no change.
    const shown = await call('/v1/webhooks/secrets', { key: tenant.key });
    expect(((await shown.json()) as { data: { secret: string }[] }).data.map((s) => s.secret)).toEqual([clear]);
  });
});
