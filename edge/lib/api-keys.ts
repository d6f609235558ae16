// API keys: `hdb_live_…` (tenant) and `hdb_admin_…` (admin), 32 random base62 characters. Shown once; stored as a
// SHA-256 hash with a short display prefix (docs/api.md).
import { apiKeys } from '../../db/schema.ts';
import { sha256Hex } from '../../contract/index.ts';
import type { Database } from '../db/client.ts';
import { newId } from './ids.ts';

export type KeyRole = 'tenant' | 'admin';
export const KEY_PREFIXES: Record<KeyRole, string> = { tenant: 'hdb_live_', admin: 'hdb_admin_' };
const SECRET_LENGTH = 32;
/** Prefix plus this many secret characters are kept in clear to recognise a key in a list. */
const DISPLAY_SECRET_CHARS = 4;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_PATTERN = /^hdb_(live|admin)_[0-9A-Za-z]{32}$/;

export function generateApiKey(role: KeyRole): { key: string; displayPrefix: string } {
  // 62 * 4 = 248 ≤ 256: rejecting bytes ≥ 248 keeps every character equally likely.
  let secret = '';
  while (secret.length < SECRET_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(SECRET_LENGTH))) {
      if (byte < 248 && secret.length < SECRET_LENGTH) secret += BASE62[byte % 62];
    }
  }
  const key = KEY_PREFIXES[role] + secret;
  return { key, displayPrefix: key.slice(0, KEY_PREFIXES[role].length + DISPLAY_SECRET_CHARS) };
}

export function isWellFormedKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/** Creates a key and returns it with the one-time secret. Used by the admin API and the local stack's first admin key. */
export async function createApiKey(db: Database, input: { tenantId: string | null; role: KeyRole; name: string }) {
  const { key, displayPrefix } = generateApiKey(input.role);
  const [row] = await db
    .insert(apiKeys)
    .values({ id: newId('apiKey'), tenantId: input.tenantId, role: input.role, name: input.name, keyHash: await hashApiKey(key), displayPrefix })
    .returning();
  if (!row) throw new Error('key insert returned nothing');
  return { row, key };
}
