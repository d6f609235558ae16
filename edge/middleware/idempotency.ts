// `Idempotency-Key` on creates: the first response is remembered per tenant and key; a retry gets it again, a reuse
// with a different body is a 409, and a retry while the first request still runs is a 409 too (Stripe semantics).
// The handler's writes and the remembered response commit in one transaction, so a request cut off by a database
// outage is either fully applied (and its retry replays the answer) or not at all (and its retry runs it). That
// transaction wraps the whole handler, or, for a handler with slow work before its writes (an upload's R2 writes, which
// must not hold a pooled connection: edge/middleware/database.ts), is the handler's own short one (rememberAnswer).
import { and, eq, isNull } from 'drizzle-orm';
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { idempotencyKeys } from '../../db/schema.ts';
import type { AppEnv, CommitActions } from '../app-types.ts';
import type { Database, Transaction } from '../db/client.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { sha256Hex } from '../../contract/index.ts';
import { badRequest, conflict } from '../lib/errors.ts';
import { tenantOf } from './auth.ts';
import { releaseConnection } from './database.ts';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/**
 * A key still marked "in progress" this long after its request began belongs to a request that died without
 * clearing it (the database went away before the cleanup): a retry may take it over. Safe because the first
 * request's writes can only commit together with its answer, and only while the key is still its own.
 */
export const IN_PROGRESS_TAKEOVER_SECONDS = 60;

class Rollback extends Error {}

/**
 * Runs `action` once the request's writes are committed (at once outside an idempotent request). Only for side
 * effects that a sweeper redoes when they are lost, such as a job's queue message (the cron re-sends it): a failure is
 * logged, and the request, already committed, still succeeds.
 */
export async function afterCommit(c: Context<AppEnv>, action: () => Promise<unknown>): Promise<void> {
  const pending = c.get('afterCommit');
  if (pending) pending.push(action);
  else await runLogged(c, [action]);
}

async function runLogged(c: Context<AppEnv>, actions: CommitActions): Promise<void> {
  for (const action of actions) {
    try {
      await action();
    } catch (error) {
      console.error(JSON.stringify({ level: 'error', msg: 'after-commit action failed; the sweeper will redo it', path: c.req.path, error: String(error) }));
    }
  }
}


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

/**
 * Where the writes and the answer commit together. 'middleware': one transaction around the whole handler.
 * 'handler': the middleware only claims the key (and frees it unless the answer committed), gives its connection back,
 * and the handler writes the answer with rememberAnswer in the transaction that writes its rows. afterCommit runs its
 * actions at once there: call it after that transaction.
 */
export type IdempotencyOptions = { transaction?: 'middleware' | 'handler' };

export const idempotency = ({ transaction = 'middleware' }: IdempotencyOptions = {}) =>
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

    // Written from here (millisecond precision) so the compare-and-set below matches exactly what was stored.
    const claimedAt = new Date();
    const inserted = await db
      .insert(idempotencyKeys)
      .values({ tenantId, key, route, requestHash, createdAt: claimedAt })
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
      if (previous.responseStatus !== null) {
        return c.json(previous.responseBody, previous.responseStatus as ContentfulStatusCode, { 'idempotent-replayed': 'true' });
      }
      const abandoned = claimedAt.getTime() - previous.createdAt.getTime() > IN_PROGRESS_TAKEOVER_SECONDS * 1000;
      const taken = abandoned
        ? await db
            .update(idempotencyKeys)
            .set({ createdAt: claimedAt })
            .where(ownedBy(tenantId, key, previous.createdAt))
            .returning({ key: idempotencyKeys.key })
        : [];
      if (taken.length === 0) throw conflict('idempotency_request_in_progress', 'a request with this Idempotency-Key is still running');
    }

    const claim = { key, requestHash, claimedAt, answerWritten: false };
    c.set('idempotency', claim);
    if (transaction === 'handler') {
      releaseConnection(c);
      await next();
      // A handler's error (caught by the app's error handler, so next() returned) may have hit its COMMIT: not stored.
      const stored = claim.answerWritten && c.error === undefined && c.res.status < 300;
      if (!stored && !isDatabaseUnavailable(c.error)) await c.get('db').delete(idempotencyKeys).where(ownedBy(tenantId, key, claimedAt));
      return;
    }
    let stored = false;
    let connectionLost = false;
    const pending: CommitActions = [];
    try {
      await db.transaction(async (tx) => {
        c.set('db', tx as unknown as Database);
        c.set('afterCommit', pending);
        await next();
        // Only successes are remembered: a rejected request may be fixed and sent again with the same key.
        if (c.res.status >= 300 || !c.res.headers.get('content-type')?.includes('application/json')) throw new Rollback();
        const responseBody: unknown = await c.res.clone().json();
        const saved = await tx
          .update(idempotencyKeys)
          .set({ responseStatus: c.res.status, responseBody })
          .where(ownedBy(tenantId, key, claimedAt))
          .returning({ key: idempotencyKeys.key });
        // A retry took the key over meanwhile (we looked abandoned): its run counts, ours must not.
        if (saved.length === 0) throw new Error(`Idempotency-Key ${key} was taken over by a retry; rolling this request back`);
        stored = true;
      });
    } catch (error) {
      connectionLost = isDatabaseUnavailable(error);
      if (!(error instanceof Rollback)) throw error;
    } finally {
      c.set('db', db);
      c.set('afterCommit', undefined);
      // A failure of ours must not pin the key: the client's retry should run the request again. When the database is
      // gone the cleanup is not even tried (postgres.js never settles a query on a client whose connection died), and
      // the takeover above frees the key instead.
      connectionLost ||= isDatabaseUnavailable(c.error);
      if (!stored && !connectionLost) await db.delete(idempotencyKeys).where(ownedBy(tenantId, key, claimedAt));
    }
    await runLogged(c, pending);
  });

/**
 * Under idempotency({ transaction: 'handler' }): remembers the answer in `tx`, the handler's transaction that writes the
 * request's rows, so both commit or neither does. Nothing to do for a request without an Idempotency-Key.
 */
export async function rememberAnswer(c: Context<AppEnv>, tx: Transaction, status: ContentfulStatusCode, body: unknown): Promise<void> {
  const claim = c.get('idempotency');
  if (!claim) return;
  const saved = await tx
    .update(idempotencyKeys)
    .set({ responseStatus: status, responseBody: body })
    .where(ownedBy(tenantOf(c.get('principal')), claim.key, claim.claimedAt))
    .returning({ key: idempotencyKeys.key });
  // A retry took the key over meanwhile (we looked abandoned): its run counts, ours must not.
  if (saved.length === 0) throw new Error(`Idempotency-Key ${claim.key} was taken over by a retry; rolling this request back`);
  claim.answerWritten = true;
}

/** The key's in-progress row as claimed at `claimedAt`; no longer matches once answered or taken over. */
function ownedBy(tenantId: string, key: string, claimedAt: Date) {
  return and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key), eq(idempotencyKeys.createdAt, claimedAt), isNull(idempotencyKeys.responseStatus));
}
