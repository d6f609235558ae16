// `Idempotency-Key` on creates: the first response is remembered per tenant and key; a retry gets it again, a reuse
// with a different body is a 409, and a retry while the first request still runs is a 409 too (Stripe semantics).
import { and, eq } from 'drizzle-orm';
import { createMiddleware } from 'hono/factory';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { idempotencyKeys } from '../../db/schema.ts';
import type { AppEnv } from '../app-types.ts';
import { sha256Hex } from '../../contract/index.ts';
import { badRequest, conflict } from '../lib/errors.ts';
import { tenantOf } from './auth.ts';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;


/**
 * What makes two requests "the same". Multipart bodies are compared by content (fields, file names, types and bytes),
 * not by their bytes: every client picks a fresh random boundary on a retry.
 */
async function bodyFingerprint(request: Request): Promise<string> {
  // Clone so the handler can still read (or parse as multipart) the original body.
  const copy = request.clone();
  if ((request.headers.get('content-type') ?? '').toLowerCase().startsWith('multipart/form-data')) {
    try {
      const parts: string[] = [];
      for (const [name, value] of (await copy.formData()).entries()) {
        const part = value as string | File;
        parts.push(
          typeof part === 'string'
            ? JSON.stringify([name, part])
            : JSON.stringify([name, part.name, part.type, await sha256Hex(new Uint8Array(await part.arrayBuffer()))]),
        );
      }
      return `multipart\n${parts.join('\n')}`;
    } catch {
      // Unparseable multipart: fall through to the raw bytes; the handler will reject it anyway.
    }
  }
  return `raw\n${await sha256Hex(new Uint8Array(await request.clone().arrayBuffer()))}`;
}

export const idempotency = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const key = c.req.header(IDEMPOTENCY_HEADER);
    if (key === undefined) {
      c.set('idempotency', null);
      return next();
    }
    if (!KEY_PATTERN.test(key)) throw badRequest('invalid_idempotency_key', 'Idempotency-Key must be 1-255 printable ASCII characters');
    const tenantId = tenantOf(c.get('principal'));
    const route = `${c.req.method} ${c.req.path}`;
    const requestHash = await sha256Hex(`${route}\n${await bodyFingerprint(c.req.raw)}`);
    const db = c.get('db');

    const inserted = await db
      .insert(idempotencyKeys)
      .values({ tenantId, key, route, requestHash })
      .onConflictDoNothing()
      .returning({ key: idempotencyKeys.key });
    if (inserted.length === 0) {
      const [previous] = await db
        .select()
        .from(idempotencyKeys)
        .where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key)));
      if (!previous || previous.requestHash !== requestHash) {
        throw conflict('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
      }
      if (previous.responseStatus === null) {
        throw conflict('idempotency_request_in_progress', 'a request with this Idempotency-Key is still running');
      }
      return c.json(previous.responseBody, previous.responseStatus as ContentfulStatusCode, { 'idempotent-replayed': 'true' });
    }

    c.set('idempotency', { key, requestHash });
    let stored = false;
    try {
      await next();
      // Only successes are remembered: a rejected request may be fixed and sent again with the same key.
      if (c.res.status < 300 && c.res.headers.get('content-type')?.includes('application/json')) {
        const responseBody: unknown = await c.res.clone().json();
        await db
          .update(idempotencyKeys)
          .set({ responseStatus: c.res.status, responseBody })
          .where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key)));
        stored = true;
      }
    } finally {
      // A failure of ours must not pin the key: the client's retry should run the request again.
      if (!stored) {
        await db.delete(idempotencyKeys).where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key)));
      }
    }
  });
