// Seeds the local stack's first keys: an admin key and a demo tenant with its key. Keys are stored hashed and shown
// once, so they are printed only on the start that creates them.
import { drizzle } from 'drizzle-orm/postgres-js';
import { eq } from 'drizzle-orm';
import postgres from 'postgres';
import * as schema from '../../db/schema.ts';
import { createApiKey } from '../../edge/routes/admin.ts';
import { newId } from '../../edge/lib/ids.ts';

export interface SeededKeys {
  readonly adminKey: string;
  readonly tenantKey: string;
  readonly tenantId: string;
}

export async function seedKeysOnce(url: string): Promise<SeededKeys | null> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const db = drizzle(client, { schema });
    const [existing] = await db.select({ id: schema.apiKeys.id }).from(schema.apiKeys).where(eq(schema.apiKeys.role, 'admin')).limit(1);
    if (existing) return null;
    const tenantId = newId('tenant');
    await db.insert(schema.tenants).values({ id: tenantId, name: 'demo' });
    const admin = await createApiKey(db, { tenantId: null, role: 'admin', name: 'local admin' });
    const tenant = await createApiKey(db, { tenantId, role: 'tenant', name: 'demo key' });
    return { adminKey: admin.key, tenantKey: tenant.key, tenantId };
  } finally {
    await client.end();
  }
}
