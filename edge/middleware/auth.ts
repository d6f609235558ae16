// Bearer API keys, looked up by SHA-256 hash. The tenant always comes from the key, never from the request.
import { and, eq, isNull, lt, or } from 'drizzle-orm';
import { createMiddleware } from 'hono/factory';
import { apiKeys } from '../../db/schema.ts';
import type { AppEnv, Principal } from '../app-types.ts';
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
    const [row] = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, await hashApiKey(key))).limit(1);
    if (!row) throw unauthorized('invalid_api_key', 'the API key is not valid');
    if (row.revokedAt) throw unauthorized('revoked_api_key', 'the API key was revoked');
    const principal: Principal = { keyId: row.id, role: row.role, tenantId: row.tenantId };
    c.set('principal', principal);
    const now = new Date();
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      const stale = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
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
