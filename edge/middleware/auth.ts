// Bearer API keys, looked up by SHA-256 hash. The tenant always comes from the key, never from the request.
import { and, eq, isNull, lt, or } from 'drizzle-orm';
import { createMiddleware } from 'hono/factory';
import { apiKeys } from '../../db/schema.ts';
import type { AppEnv, Principal } from '../app-types.ts';
import { apiKeyCache, type CachedApiKey } from '../lib/api-key-cache.ts';
import { hashApiKey, isWellFormedKey, type KeyRole } from '../lib/api-keys.ts';
import { ApiError } from '../lib/errors.ts';

/** last_used_at is a hint for people, not an audit log: write it at most this often per key. */
const LAST_USED_RESOLUTION_MS = 60_000;

const unauthorized = (code: string, message: string) =>
  new ApiError(401, code, message, null, { 'www-authenticate': 'Bearer' });

export const authenticate = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) throw unauthorized('missing_api_key', 'send Authorization: Bearer <api key>');
    const key = match[1];
    if (!isWellFormedKey(key)) throw unauthorized('invalid_api_key', 'the API key is not valid');
    const db = c.get('db');
    const hash = await hashApiKey(key);
    let row: CachedApiKey | undefined = apiKeyCache.get(hash);
    if (!row) {
      [row] = await db
        .select({ id: apiKeys.id, role: apiKeys.role, tenantId: apiKeys.tenantId, revokedAt: apiKeys.revokedAt, lastUsedAt: apiKeys.lastUsedAt })
        .from(apiKeys)
        .where(eq(apiKeys.keyHash, hash))
        .limit(1);
      if (!row) throw unauthorized('invalid_api_key', 'the API key is not valid');
      apiKeyCache.set(hash, row);
    }
    if (row.revokedAt) throw unauthorized('revoked_api_key', 'the API key was revoked');
    const principal: Principal = { keyId: row.id, role: row.role, tenantId: row.tenantId };
    c.set('principal', principal);
    const now = new Date();
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      const stale = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
      // The cached row too, so the next requests of this key in this isolate do not write it again.
      row.lastUsedAt = now;
      c.executionCtx.waitUntil(
        db
          .update(apiKeys)
          .set({ lastUsedAt: now })
          .where(and(eq(apiKeys.id, row.id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, stale))))
          .then(() => undefined, () => undefined),
      );
    }
    await next();
  });

export const requireRole = (role: KeyRole) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.get('principal');
    if (principal.role !== role) {
      throw new ApiError(403, 'forbidden', `this endpoint needs a key with the ${role} role`);
    }
    if (role === 'tenant' && !principal.tenantId) throw new ApiError(403, 'forbidden', 'this key has no tenant');
    await next();
  });

/** The caller's tenant; only call behind requireRole('tenant'). */
export function tenantOf(principal: Principal): string {
  if (!principal.tenantId) throw new ApiError(403, 'forbidden', 'this key has no tenant');
  return principal.tenantId;
}
