// A real HTTP webhook receiver for the edge tests, run in Node (globalSetup) while the Worker runs in workerd.
// It verifies Standard Webhooks signatures with its own implementation (Node crypto, written from the specification,
// sharing nothing with edge/webhooks/sign.ts) and follows a scenario the test registers: fail the first N attempts,
// redirect, or hang. Tests drive it over HTTP because they run in another process.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ReceiverScenario {
  /** Secrets the receiver knows; a request verifies if any signature matches any of them. */
  secrets: string[];
  /** The first `failFirst` requests are answered with `failStatus`. */
  failFirst?: number;
  failStatus?: number;
  retryAfter?: string;
  /** `redirect`: always answer 307 to another path of this receiver; `hang`: answer after `hangMs`. */
  mode?: 'normal' | 'redirect' | 'hang';
  hangMs?: number;
}

export interface ReceivedAttempt {
  path: string;
  webhookId: string | null;
  webhookTimestamp: string | null;
  webhookSignature: string | null;
  contentType: string | null;
  body: string;
  /** Indexes into the scenario's secrets of those that verified one of the signatures. */
  verifiedWith: number[];
  answered: number;
}

function signatureFor(secret: string, id: string, timestamp: string, body: string): Buffer {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
}

export function verifiedSecrets(secrets: string[], id: string | null, timestamp: string | null, header: string | null, body: string): number[] {
  if (!id || !timestamp || !header) return [];
  const offered = header
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  return secrets.flatMap((secret, index) => {
    const expected = signatureFor(secret, id, timestamp, body);
    return offered.some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected)) ? [index] : [];
  });
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(value));
}

export async function startWebhookReceiver(): Promise<{ url: string; close(): Promise<void> }> {
  const scenarios = new Map<string, { scenario: ReceiverScenario; attempts: ReceivedAttempt[]; redirectsFollowed: number }>();
  let counter = 0;

  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? '/', 'http://receiver');
      const body = await readBody(request);
      const parts = url.pathname.split('/').filter(Boolean);

      if (request.method === 'POST' && url.pathname === '/scenarios') {
        const id = `s${++counter}`;
        scenarios.set(id, { scenario: JSON.parse(body) as ReceiverScenario, attempts: [], redirectsFollowed: 0 });
        return sendJson(response, 201, { id, path: `/hooks/${id}` });
      }
      if (request.method === 'GET' && parts[0] === 'scenarios' && parts[1]) {
        const entry = scenarios.get(parts[1]);
        return entry ? sendJson(response, 200, { attempts: entry.attempts, redirectsFollowed: entry.redirectsFollowed }) : sendJson(response, 404, {});
      }
      if (parts[0] === 'redirected' && parts[1]) {
        const entry = scenarios.get(parts[1]);
        if (entry) entry.redirectsFollowed++;
        return sendJson(response, 200, { followed: true });
      }
      if (request.method === 'POST' && parts[0] === 'hooks' && parts[1]) {
        const entry = scenarios.get(parts[1]);
        if (!entry) return sendJson(response, 404, {});
        const { scenario, attempts } = entry;
        const header = (name: string) => (request.headers[name] as string | undefined) ?? null;
        const attempt: ReceivedAttempt = {
          path: url.pathname,
          webhookId: header('webhook-id'),
          webhookTimestamp: header('webhook-timestamp'),
          webhookSignature: header('webhook-signature'),
          contentType: header('content-type'),
          body,
          verifiedWith: verifiedSecrets(scenario.secrets, header('webhook-id'), header('webhook-timestamp'), header('webhook-signature'), body),
          answered: 0,
        };
        attempts.push(attempt);
        if (scenario.mode === 'hang') await new Promise((resolve) => setTimeout(resolve, scenario.hangMs ?? 5_000));
        if (scenario.mode === 'redirect') {
          attempt.answered = 307;
          response.writeHead(307, { location: `/redirected/${parts[1]}` });
          return response.end();
        }
        const failing = attempts.length <= (scenario.failFirst ?? 0);
        // A receiver that cannot verify the signature must refuse the event (Standard Webhooks, "Verifying").
        const status = failing ? (scenario.failStatus ?? 503) : attempt.verifiedWith.length > 0 ? 204 : 401;
        attempt.answered = status;
        const headers: Record<string, string> = failing && scenario.retryAfter ? { 'retry-after': scenario.retryAfter } : {};
        response.writeHead(status, headers);
        return response.end();
      }
      sendJson(response, 404, {});
    } catch (error) {
      sendJson(response, 500, { error: String(error) });
    }
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('webhook receiver did not bind a port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
