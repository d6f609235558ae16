// HMAC-SHA256 request signing between the edge and the runner, in both directions (CONTRACT.md "Signing").
// WebCrypto only, so the same module runs in workerd and in Node.
import { base64ToBytes, bytesToBase64 } from './base64.ts';

export const SIGNATURE_HEADERS = {
  id: 'hdb-message-id',
  timestamp: 'hdb-timestamp',
  signature: 'hdb-signature',
} as const;

/** Messages older or newer than this are rejected as replays (same tolerance as Standard Webhooks). */
export const REPLAY_WINDOW_SECONDS = 300;
/** Shorter secrets make the HMAC guessable; 32 bytes matches SHA-256's output. */
export const MIN_SECRET_LENGTH = 32;
const SIGNATURE_VERSION = 'v1';

export type SignedMessage = {
  method: string;
  /** URL path without query string, exactly as the client sent it. */
  path: string;
  body: string;
};

export type SignatureHeaders = Record<(typeof SIGNATURE_HEADERS)[keyof typeof SIGNATURE_HEADERS], string>;

export type VerifyFailure =
  | 'missing_headers'
  | 'bad_timestamp'
  | 'timestamp_out_of_window'
  | 'bad_signature_format'
  | 'signature_mismatch';

export type VerifyResult = { ok: true; id: string; timestamp: number } | { ok: false; reason: VerifyFailure };

const encoder = new TextEncoder();

function signedContent(id: string, timestamp: number, message: SignedMessage): Uint8Array {
  // The method and path are signed too, so a captured DELETE for one job cannot be replayed against another.
  return encoder.encode(`${id}.${timestamp}.${message.method.toUpperCase()}.${message.path}.${message.body}`);
}

// Spelled this way because `CryptoKey` is a DOM/Workers global name that Node's types do not declare.
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/**
 * Imported keys by secret, so each secret is imported once per process or isolate rather than once per message. Only
 * settled keys are kept (no shared pending promise, which workerd would tie to the request that created it); the
 * few secrets in use (current, previous) fit, and the oldest entry goes when a rotation brings more.
 */
const importedKeys = new Map<string, HmacKey>();
const IMPORTED_KEYS_LIMIT = 8;

async function hmacKey(secret: string): Promise<HmacKey> {
  const cached = importedKeys.get(secret);
  if (cached) return cached;
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new Error(`signing secret must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  if (!importedKeys.has(secret) && importedKeys.size >= IMPORTED_KEYS_LIMIT) importedKeys.delete(importedKeys.keys().next().value!);
  importedKeys.set(secret, key);
  return key;
}

export function newMessageId(): string {
  return `msg_${crypto.randomUUID().replaceAll('-', '')}`;
}

export async function signMessage(
  secret: string,
  message: SignedMessage,
  options: { id?: string; now?: Date } = {},
): Promise<SignatureHeaders> {
  const id = options.id ?? newMessageId();
  const timestamp = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const key = await hmacKey(secret);
  const mac = await crypto.subtle.sign('HMAC', key, signedContent(id, timestamp, message));
  return {
    [SIGNATURE_HEADERS.id]: id,
    [SIGNATURE_HEADERS.timestamp]: String(timestamp),
    [SIGNATURE_HEADERS.signature]: `${SIGNATURE_VERSION},${bytesToBase64(new Uint8Array(mac))}`,
  };
}

type HeaderSource = { get(name: string): string | null };

/**
 * Verifies a message against one or more secrets (several during a rotation). The signature header may hold several
 * space-separated `v1,<base64>` entries; one match is enough. Comparison is done by `crypto.subtle.verify`, which is
 * constant-time.
 */
export async function verifyMessage(
  secrets: readonly string[],
  headers: HeaderSource,
  message: SignedMessage,
  options: { now?: Date; windowSeconds?: number } = {},
): Promise<VerifyResult> {
  const id = headers.get(SIGNATURE_HEADERS.id);
  const timestampText = headers.get(SIGNATURE_HEADERS.timestamp);
  const signatureText = headers.get(SIGNATURE_HEADERS.signature);
  if (!id || !timestampText || !signatureText) return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,12}$/.test(timestampText)) return { ok: false, reason: 'bad_timestamp' };
  const timestamp = Number(timestampText);
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > (options.windowSeconds ?? REPLAY_WINDOW_SECONDS)) {
    return { ok: false, reason: 'timestamp_out_of_window' };
  }
  const candidates: Uint8Array[] = [];
  for (const entry of signatureText.split(' ')) {
    const [version, value] = entry.split(',', 2);
    if (version !== SIGNATURE_VERSION || !value) continue;
    try {
      candidates.push(base64ToBytes(value));
    } catch {
      // A malformed entry is skipped; another entry may still match.
    }
  }
  if (candidates.length === 0) return { ok: false, reason: 'bad_signature_format' };
  const content = signedContent(id, timestamp, message);
  for (const secret of secrets) {
    const key = await hmacKey(secret);
    for (const candidate of candidates) {
      if (await crypto.subtle.verify('HMAC', key, candidate, content)) return { ok: true, id, timestamp };
    }
  }
  return { ok: false, reason: 'signature_mismatch' };
}

/** Signs and sends: the one way either side should call the other. */
export async function signedFetch(
  secret: string,
  url: string,
  init: { method: string; body?: string; headers?: Record<string, string>; signal?: AbortSignal },
): Promise<Response> {
  const body = init.body ?? '';
  const signature = await signMessage(secret, { method: init.method, path: new URL(url).pathname, body });
  return fetch(url, {
    method: init.method,
    headers: { 'content-type': 'application/json', ...init.headers, ...signature },
    ...(init.method === 'GET' || init.method === 'HEAD' ? {} : { body }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

/** Verifies an incoming `Request` (Fetch API, as in Hono on both sides); reads the body once and returns it. */
export async function verifyRequest(
  secrets: readonly string[],
  request: Request,
  options: { now?: Date; windowSeconds?: number } = {},
): Promise<{ result: VerifyResult; body: string }> {
  const body = await request.text();
  const path = new URL(request.url).pathname;
  const result = await verifyMessage(secrets, request.headers, { method: request.method, path, body }, options);
  return { result, body };
}

/**
 * Remembers message ids seen inside the replay window, for receivers without a database (the runner). An id seen
 * twice inside the window is a replay; outside it the timestamp check already rejects it.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  constructor(private readonly windowSeconds = REPLAY_WINDOW_SECONDS) {}

  /** Returns false when the id was already seen inside the window. */
  accept(id: string, nowMs = Date.now()): boolean {
    const horizon = nowMs - 2 * this.windowSeconds * 1000;
    for (const [seenId, at] of this.seen) {
      if (at >= horizon) break; // Map keeps insertion order, so the rest is newer.
      this.seen.delete(seenId);
    }
    if (this.seen.has(id)) return false;
    this.seen.set(id, nowMs);
    return true;
  }
}
