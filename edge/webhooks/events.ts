import { z } from 'zod';

/** Every event a tenant can receive. Names follow Standard Webhooks' `group.action` convention. */
export const WEBHOOK_EVENT_TYPES = [
  'personalization.started',
  'personalization.progress',
  'personalization.succeeded',
  'personalization.failed',
  'personalization.canceled',
  'generation.succeeded',
  'generation.failed',
] as const;

export const webhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES);
export type WebhookEventType = z.infer<typeof webhookEventTypeSchema>;

/**
 * `webhook_events` on a create request: the events the caller wants. Absent means "all of them"; an empty list is
 * rejected because it would be a webhook that can never fire, which is almost certainly a client bug.
 */
export const webhookEventsFilterSchema = z
  .array(webhookEventTypeSchema)
  .min(1, 'webhook_events must name at least one event (omit it to receive all events)')
  .max(WEBHOOK_EVENT_TYPES.length)
  .transform((events) => [...new Set(events)]);

/** Whether a request that asked for `filter` wants `type`. `null`/`undefined` means every event. */
export function wantsEvent(filter: readonly WebhookEventType[] | null | undefined, type: WebhookEventType): boolean {
  return filter == null || filter.includes(type);
}

/**
 * The body we POST, in the shape Standard Webhooks recommends: `type`, `timestamp` (when the event happened, ISO 8601)
 * and `data`. The body is serialized once at enqueue time and every attempt sends the same bytes.
 */
export interface WebhookPayload<TData = unknown> {
  type: WebhookEventType;
  timestamp: string;
  data: TData;
}

export function serializeWebhookPayload(type: WebhookEventType, occurredAt: Date, data: unknown): string {
  const payload: WebhookPayload = { type, timestamp: occurredAt.toISOString(), data };
  return JSON.stringify(payload);
}
