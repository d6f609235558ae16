import { base64ToBytes, bytesToBase64 } from '../../contract/base64.ts';
import { webhookSecretKey } from './secret.ts';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com, "Signature scheme"): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, signed with HMAC-SHA256 under each active secret; the header lists
 * `v1,<base64 signature>` entries separated by spaces, so during a secret rotation receivers holding either the old or
 * the new secret can verify. WebCrypto only, so the same code runs in workerd and Node.
 */
export const SIGNATURE_VERSION = 'v1';

/** Standard Webhooks' recommended tolerance for `webhook-timestamp` when verifying (replay window). */
export const DEFAULT_TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

const encoder = new TextEncoder();

async function hmacSha256(key: Uint8Array<ArrayBuffer>, content: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', cryptoKey, encoder.encode(content)));
}

function signedContent(id: string, timestampSeconds: number, body: string): string {
  return `${id}.${timestampSeconds}.${body}`;
}

/** One `v1,<base64>` entry per secret, in the order given (newest first by convention). */
export async function signWebhook(input: {
  id: string;
  timestampSeconds: number;
  body: string;
  secrets: readonly string[];
}): Promise<WebhookHeaders> {
  if (input.secrets.length === 0) throw new Error('signWebhook needs at least one secret');
  if (!Number.isSafeInteger(input.timestampSeconds) || input.timestampSeconds < 0) {
    throw new Error(`webhook timestamp must be a non-negative integer of seconds, got ${input.timestampSeconds}`);
  }
  const content = signedContent(input.id, input.timestampSeconds, input.body);
  const signatures = await Promise.all(
    input.secrets.map(async (secret) => `${SIGNATURE_VERSION},${bytesToBase64(await hmacSha256(webhookSecretKey(secret), content))}`),
  );
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(input.timestampSeconds),
    'webhook-signature': signatures.join(' '),
  };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/**
 * Receiver-side verification, for clients that run on Workers and for our own tooling. Constant-time comparison via
 * `crypto.subtle.verify` (it compares the MAC itself), tolerance on the timestamp against replays.
 */
export async function verifyWebhook(input: {
  headers: { get(name: string): string | null };
  body: string;
  secret: string;
  nowSeconds: number;
  toleranceSeconds?: number;
}): Promise<VerifyResult> {
  const id = input.headers.get('webhook-id');
  const timestamp = input.headers.get('webhook-timestamp');
  const signatureHeader = input.headers.get('webhook-signature');
  if (!id || !timestamp || !signatureHeader) return { ok: false, reason: 'missing webhook headers' };
  if (!/^\d+$/.test(timestamp)) return { ok: false, reason: 'malformed webhook-timestamp' };
  const timestampSeconds = Number(timestamp);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TIMESTAMP_TOLERANCE_SECONDS;
  if (Math.abs(input.nowSeconds - timestampSeconds) > tolerance) return { ok: false, reason: 'timestamp outside tolerance' };

  const key = await crypto.subtle.importKey('raw', webhookSecretKey(input.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const content = encoder.encode(signedContent(id, timestampSeconds, input.body));
  for (const entry of signatureHeader.split(' ')) {
    const [version, signature] = entry.split(',', 2);
    if (version !== SIGNATURE_VERSION || !signature) continue;
    let mac: Uint8Array<ArrayBuffer>;
    try {
      mac = new Uint8Array(base64ToBytes(signature));
    } catch {
      continue;
    }
    if (await crypto.subtle.verify('HMAC', key, mac, content)) return { ok: true };
  }
  return { ok: false, reason: 'no matching signature' };
}
