// Seeds the local stack's first keys: an admin key and a demo tenant with its key. Keys are stored hashed and shown
// once, so they are printed only on the start that creates them. Also the installation's key-encryption key for
// webhook secrets.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { eq } from 'drizzle-orm';
import postgres from 'postgres';
import * as schema from '../../db/schema.ts';
import { generateApiKey, hashApiKey, type KeyRole } from '../../edge/lib/api-keys.ts';
import { newId } from '../../edge/lib/ids.ts';
import { generateSealingKey } from '../../edge/lib/sealing.ts';

export interface SeededKeys {
  readonly adminKey: string;
  readonly tenantKey: string;
  readonly tenantId: string;
}

type Db = ReturnType<typeof drizzle<typeof schema>>;

/** The same key shape the admin API mints (edge/lib/api-keys.ts), inserted directly: the edge is not needed. */
async function mintKey(db: Db, tenantId: string | null, role: KeyRole, name: string): Promise<string> {
  const { key, displayPrefix } = generateApiKey(role);
  await db.insert(schema.apiKeys).values({ id: newId('apiKey'), tenantId, role, name, keyHash: await hashApiKey(key), displayPrefix });
  return key;
}

export async function seedKeysOnce(url: string): Promise<SeededKeys | null> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const db = drizzle(client, { schema });
    const [existing] = await db.select({ id: schema.apiKeys.id }).from(schema.apiKeys).where(eq(schema.apiKeys.role, 'admin')).limit(1);
    if (existing) return null;
    const tenantId = newId('tenant');
    await db.insert(schema.tenants).values({ id: tenantId, name: 'demo' });
    const adminKey = await mintKey(db, null, 'admin', 'local admin');
    const tenantKey = await mintKey(db, tenantId, 'tenant', 'demo key');
    return { adminKey, tenantKey, tenantId };
  } finally {
    await client.end();
  }
}

/** More keys of one tenant, e.g. for a load test that must stay under the per-key rate limit. */
export async function mintTenantKeys(url: string, tenantId: string, count: number): Promise<string[]> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const db = drizzle(client, { schema });
    const keys: string[] = [];
    for (let i = 0; i < count; i++) keys.push(await mintKey(db, tenantId, 'tenant', `load key ${i}`));
    return keys;
  } finally {
    await client.end();
  }
}

/**
 * `WEBHOOK_SEALING_KEYS` of this installation (edge/webhooks/README.md), made once and kept in the data folder
 * beside the runner secret, never committed: the webhook secrets in the local database open only with it.
 */
export function sealingKeysIn(dataDir: string): string {
  const path = join(dataDir, 'webhook-sealing-keys');
  if (!existsSync(path)) writeFileSync(path, generateSealingKey('local1'), { mode: 0o600 });
  return readFileSync(path, 'utf8').trim();
}
