import { z } from 'zod';

/** The `webhooks` Queue carries only a pointer and a claim token; the delivery itself lives in Postgres. */
export const webhookQueueMessageSchema = z.object({
  kind: z.literal('webhook.attempt'),
  deliveryId: z.string().min(1),
  token: z.string().min(1),
});
export type WebhookQueueMessage = z.infer<typeof webhookQueueMessageSchema>;

/** Cloudflare Queues refuse a `delaySeconds` above 12 h; longer waits are bridged by re-enqueueing. */
export const MAX_QUEUE_DELAY_SECONDS = 12 * 3600;

/** The part of a Cloudflare `Queue` binding we use (the binding satisfies it structurally). */
export interface WebhookQueue {
  send(body: WebhookQueueMessage, options?: { delaySeconds?: number }): Promise<unknown>;
}

export function newDispatchToken(): string {
  return crypto.randomUUID();
}

/** Sends the attempt message, waiting at most the Queue's maximum; the consumer re-enqueues whatever remains. */
export async function sendAttemptMessage(queue: WebhookQueue, deliveryId: string, token: string, delaySeconds: number): Promise<void> {
  const delay = Math.min(Math.max(0, Math.ceil(delaySeconds)), MAX_QUEUE_DELAY_SECONDS);
  await queue.send({ kind: 'webhook.attempt', deliveryId, token }, delay > 0 ? { delaySeconds: delay } : undefined);
}
