// A real HTTP webhook receiver for the end-to-end tests. It verifies Standard Webhooks signatures with its own code
// (Node crypto, from the specification: HMAC-SHA256 over `id.timestamp.body`, key = base64 after `whsec_`), keeps
// every attempt, and can be "down" (answering 503) for as long as a test says.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Standard Webhooks: receivers reject timestamps further than this from their clock. */
const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

export interface ReceivedEvent {
  readonly webhookId: string;
  readonly timestamp: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly verified: boolean;
  /** What the receiver answered. */
  readonly status: number;
}

export function standardWebhookSignature(secret: string, id: string, timestamp: string, body: string): string {
  if (!secret.startsWith('whsec_')) throw new Error('a Standard Webhooks secret starts with whsec_');
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
}

export function verifyStandardWebhook(secrets: readonly string[], headers: Record<string, string | undefined>, body: string, nowSeconds = Date.now() / 1000): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS) return false;
  const offered = signatures
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  return secrets.some((secret) => {
    const expected = Buffer.from(standardWebhookSignature(secret, id, timestamp, body), 'base64');
    return offered.some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected));
  });
}

export class WebhookReceiver {
  readonly events: ReceivedEvent[] = [];
  secrets: string[] = [];
  /** While true every delivery is answered 503 (the receiver is "down"). */
  down = false;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(' ') : v]));
        const verified = verifyStandardWebhook(this.secrets, headers, body);
        const status = this.down ? 503 : verified ? 204 : 401;
        let parsed: { type?: string; data?: Record<string, unknown> } = {};
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          // Recorded with an empty type; the test will see it.
        }
        this.events.push({
          webhookId: headers['webhook-id'] ?? '',
          timestamp: Number(headers['webhook-timestamp'] ?? 0),
          type: parsed.type ?? '',
          data: parsed.data ?? {},
          verified,
          status,
        });
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  /** Accepted (2xx) events about one job, in arrival order. */
  accepted(jobId: string, type?: string): ReceivedEvent[] {
    return this.events.filter((e) => e.status < 300 && e.data.id === jobId && (type === undefined || e.type === type));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
