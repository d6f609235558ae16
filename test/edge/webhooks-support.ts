// Helpers for the webhook tests in workerd: a real Postgres connection, fresh tenants, the Node-side receiver, and a
// Queue stand-in that records sends so a test can play Cloudflare Queues' delays on an injected clock (Queues' own
// timing is infrastructure; waiting hours for it is not an option).
import { env } from 'cloudflare:test';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { inject } from 'vitest';
import * as schema from '../../db/schema.ts';
import { consumeWebhookBatch, type WebhookConsumerDeps } from '../../edge/webhooks/consumer.ts';
import type { WebhookQueue, WebhookQueueMessage } from '../../edge/webhooks/queue-message.ts';
import { webhookKeyringFromEnv } from '../../edge/webhooks/secrets-store.ts';
import type { Env } from '../../edge/env.ts';
import type { Keyring } from '../../edge/lib/sealing.ts';
import type { ReceivedAttempt, ReceiverScenario } from './webhooks-receiver.ts';

type TestEnv = { DATABASE_URL: string };

export function openTestDb() {
  const url = (env as unknown as Partial<TestEnv>).DATABASE_URL;
  if (!url) throw new Error('no DATABASE_URL binding in the edge test project');
  const sql = postgres(url, { max: 2, fetch_types: false, onnotice: () => {} });
  return { db: drizzle(sql, { schema }), close: () => sql.end({ timeout: 1 }) };
}

export async function createTenant(db: ReturnType<typeof openTestDb>['db']): Promise<string> {
  const id = `ten_${crypto.randomUUID().replaceAll('-', '').slice(0, 20)}`;
  await db.insert(schema.tenants).values({ id, name: `webhook test ${id}` });
  return id;
}

function receiverUrl(): string {
  const url = inject('webhookReceiverUrl');
  if (!url) throw new Error('no webhook receiver: add test/edge/webhooks-receiver.global-setup.ts to the edge project globalSetup');
  return url;
}

export async function receiverScenario(scenario: ReceiverScenario): Promise<{ id: string; url: string }> {
  const response = await fetch(`${receiverUrl()}/scenarios`, { method: 'POST', body: JSON.stringify(scenario) });
  const { id, path } = (await response.json()) as { id: string; path: string };
  return { id, url: `${receiverUrl()}${path}` };
}

export async function receivedBy(scenarioId: string): Promise<{ attempts: ReceivedAttempt[]; redirectsFollowed: number }> {
  const response = await fetch(`${receiverUrl()}/scenarios/${scenarioId}`);
  return (await response.json()) as { attempts: ReceivedAttempt[]; redirectsFollowed: number };
}

export class Clock {
  constructor(public current: Date) {}
  now = (): Date => this.current;
  advance(seconds: number): void {
    this.current = new Date(this.current.getTime() + seconds * 1000);
  }
}

export interface SentMessage {
  body: WebhookQueueMessage;
  delaySeconds: number;
}

export class RecordingQueue implements WebhookQueue {
  readonly sent: SentMessage[] = [];
  failNext = false;
  async send(body: WebhookQueueMessage, options?: { delaySeconds?: number }): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('queue unavailable');
    }
    this.sent.push({ body, delaySeconds: options?.delaySeconds ?? 0 });
  }
}

export interface DrainLog {
  /** Every message handled, with its delay, in order. */
  handled: SentMessage[];
  acked: number;
  retried: number;
}

/**
 * Plays the queue: takes messages in send order, advances the clock by each one's delay (messages are sent one at a
 * time per delivery, so order is time order), and hands them to the consumer.
 */
export async function drainQueue(
  queue: RecordingQueue,
  clock: Clock,
  given: Omit<WebhookConsumerDeps, 'queue' | 'now' | 'keyring'> & { keyring?: Keyring },
): Promise<DrainLog> {
  // The Worker's own keys unless a test brings others.
  const deps = { ...given, keyring: given.keyring ?? (await webhookKeyringFromEnv(env as unknown as Env)) };
  const log: DrainLog = { handled: [], acked: 0, retried: 0 };
  for (let guard = 0; queue.sent.length > 0; guard++) {
    if (guard > 100) throw new Error('webhook queue did not drain in 100 messages');
    const message = queue.sent.shift()!;
    clock.advance(message.delaySeconds);
    log.handled.push(message);
    await consumeWebhookBatch(
      { messages: [{ body: message.body, attempts: 1, ack: () => void log.acked++, retry: () => void log.retried++ }] },
      { ...deps, queue, now: clock.now },
    );
  }
  return log;
}
