import { webhookDeliveries } from '../../db/schema/webhooks.ts';
import type { WebhookDb } from './db.ts';
import { serializeWebhookPayload, type WebhookEventType } from './events.ts';
import { newDispatchToken, sendAttemptMessage, type WebhookQueue } from './queue-message.ts';
import { logWebhook } from './log.ts';

export interface WebhookEvent {
  tenantId: string;
  jobId?: string | null;
  /** The request's `webhook_url`; nothing is sent when it is absent. */
  url: string | null | undefined;
  /** The request's `webhook_events`; null or undefined means every event. */
  events: readonly string[] | null | undefined;
  type: WebhookEventType;
  data: unknown;
  /** When the event happened (the payload's `timestamp`); defaults to now. */
  occurredAt?: Date;
}

export function newDeliveryId(): string {
  // `msg_` as in Standard Webhooks' examples; this is the `webhook-id` header, stable across attempts and replays.
  return `msg_${crypto.randomUUID().replaceAll('-', '')}`;
}

/**
 * Records a delivery and puts its first attempt on the `webhooks` Queue. Returns the delivery id, or null when the
 * request has no webhook or did not ask for this event.
 *
 * Safe to call inside the caller's transaction (pass the transaction as `db`): should the message be consumed before
 * the commit, the consumer retries it shortly; should `send` itself fail, the row stays pending with its attempt due
 * and `redispatchOverdueWebhooks` (cron) sends it. A lost queue message therefore never loses an event.
 */
export async function enqueueWebhook(
  deps: { db: WebhookDb; queue: WebhookQueue; now?: () => Date },
  event: WebhookEvent,
): Promise<{ deliveryId: string } | null> {
  if (!event.url) return null;
  if (event.events != null && !event.events.includes(event.type)) return null;
  const now = deps.now?.() ?? new Date();
  const deliveryId = newDeliveryId();
  const token = newDispatchToken();
  await deps.db.insert(webhookDeliveries).values({
    id: deliveryId,
    tenantId: event.tenantId,
    jobId: event.jobId ?? null,
    eventType: event.type,
    url: event.url,
    body: serializeWebhookPayload(event.type, event.occurredAt ?? now, event.data),
    state: 'pending',
    nextAttemptAt: now,
    dispatchToken: token,
    createdAt: now,
    updatedAt: now,
  });
  try {
    await sendAttemptMessage(deps.queue, deliveryId, token, 0);
  } catch (error) {
    logWebhook('warn', 'webhook queue send failed; the sweeper will dispatch it', { deliveryId, error: String(error) });
  }
  return { deliveryId };
}
