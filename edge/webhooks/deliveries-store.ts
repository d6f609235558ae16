import { and, desc, eq, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import { webhookDeliveries } from '../../db/schema/webhooks.ts';
import type { WebhookDb } from './db.ts';
import type { WebhookEventType } from './events.ts';
import { newDispatchToken, sendAttemptMessage, type WebhookQueue } from './queue-message.ts';
import { WEBHOOK_MAX_ATTEMPTS } from './retry-schedule.ts';

export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
export type WebhookDeliveryState = WebhookDeliveryRow['state'];

/** The public view of a delivery: everything but the claim token. */
export function presentDelivery(row: WebhookDeliveryRow, options: { withPayload: boolean }) {
  return {
    id: row.id,
    // Only enqueueWebhook writes this column, always with a WebhookEventType.
    event_type: row.eventType as WebhookEventType,
    job_id: row.jobId,
    url: row.url,
    state: row.state,
    attempts: row.attempts,
    max_attempts: WEBHOOK_MAX_ATTEMPTS,
    last_status: row.lastStatus,
    last_error: row.lastError,
    first_attempt_at: row.firstAttemptAt?.toISOString() ?? null,
    last_attempt_at: row.lastAttemptAt?.toISOString() ?? null,
    next_attempt_at: row.state === 'pending' ? (row.nextAttemptAt?.toISOString() ?? null) : null,
    delivered_at: row.deliveredAt?.toISOString() ?? null,
    dead_at: row.deadAt?.toISOString() ?? null,
    replay_count: row.replayCount,
    created_at: row.createdAt.toISOString(),
    ...(options.withPayload ? { payload: JSON.parse(row.body) as unknown } : {}),
  };
}

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is malformed');
    this.name = 'InvalidCursorError';
  }
}

interface Cursor {
  createdAt: Date;
  id: string;
}

export function encodeCursor(row: { createdAt: Date; id: string }): string {
  return btoa(`${row.createdAt.toISOString()}|${row.id}`).replaceAll('+', '-').replaceAll('/', '_').replaceAll('=', '');
}

export function decodeCursor(cursor: string): Cursor {
  let text: string;
  try {
    text = atob(cursor.replaceAll('-', '+').replaceAll('_', '/'));
  } catch {
    throw new InvalidCursorError();
  }
  const separator = text.indexOf('|');
  const createdAt = new Date(text.slice(0, separator));
  const id = text.slice(separator + 1);
  if (separator < 0 || Number.isNaN(createdAt.getTime()) || !id.startsWith('msg_')) throw new InvalidCursorError();
  return { createdAt, id };
}

/** A tenant's deliveries, newest first, with keyset pagination on (created_at, id). */
export async function listWebhookDeliveries(
  db: WebhookDb,
  tenantId: string,
  query: { states?: readonly WebhookDeliveryState[]; jobId?: string; limit: number; cursor?: string },
): Promise<{ rows: WebhookDeliveryRow[]; nextCursor: string | null }> {
  const conditions: SQL[] = [eq(webhookDeliveries.tenantId, tenantId)];
  if (query.states && query.states.length > 0) conditions.push(inArray(webhookDeliveries.state, [...query.states]));
  if (query.jobId) conditions.push(eq(webhookDeliveries.jobId, query.jobId));
  if (query.cursor) {
    const after = decodeCursor(query.cursor);
    conditions.push(
      or(
        lt(webhookDeliveries.createdAt, after.createdAt),
        and(eq(webhookDeliveries.createdAt, after.createdAt), lt(webhookDeliveries.id, after.id)),
      )!,
    );
  }
  const rows = await db
    .select()
    .from(webhookDeliveries)
    .where(and(...conditions))
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(query.limit + 1);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return { rows: page, nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
}

export async function getWebhookDelivery(db: WebhookDb, tenantId: string, id: string): Promise<WebhookDeliveryRow | null> {
  const [row] = await db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.tenantId, tenantId)));
  return row ?? null;
}

export type ReplayResult = { kind: 'replayed'; row: WebhookDeliveryRow } | { kind: 'not_found' } | { kind: 'pending' };

/**
 * Manual replay: a dead (or already delivered) delivery starts a fresh retry schedule with the same `webhook-id`
 * and body, so a receiver that did process it can recognise the duplicate. A pending delivery is refused: it is
 * already scheduled, and a second schedule would double its attempts.
 */
export async function replayWebhookDelivery(
  deps: { db: WebhookDb; queue: WebhookQueue; now?: () => Date },
  tenantId: string,
  id: string,
): Promise<ReplayResult> {
  const now = deps.now?.() ?? new Date();
  const token = newDispatchToken();
  const [row] = await deps.db
    .update(webhookDeliveries)
    .set({
      state: 'pending',
      attempts: 0,
      firstAttemptAt: null,
      nextAttemptAt: now,
      dispatchToken: token,
      deadAt: null,
      deliveredAt: null,
      replayCount: sql`${webhookDeliveries.replayCount} + 1`,
      updatedAt: now,
    })
    .where(
      and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.tenantId, tenantId), inArray(webhookDeliveries.state, ['dead', 'delivered'])),
    )
    .returning();
  if (!row) {
    const existing = await getWebhookDelivery(deps.db, tenantId, id);
    return existing ? { kind: 'pending' } : { kind: 'not_found' };
  }
  // If this send fails the row is pending and due: the sweeper dispatches it.
  await sendAttemptMessage(deps.queue, id, token, 0).catch(() => undefined);
  return { kind: 'replayed', row };
}
