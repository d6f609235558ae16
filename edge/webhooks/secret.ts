import { base64ToBytes, bytesToBase64 } from '../../contract/base64.ts';

/**
 * Per-tenant signing secrets in the Standard Webhooks format: `whsec_` followed by base64 key material.
 * The spec accepts 24 to 64 bytes of key; we generate 32, the SHA-256 output length that RFC 2104 §3 recommends as the
 * least key length for HMAC.
 */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const WEBHOOK_SECRET_BYTES = 32;
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

export class InvalidWebhookSecretError extends Error {
  constructor(reason: string) {
    super(`invalid webhook secret: ${reason}`);
    this.name = 'InvalidWebhookSecretError';
  }
}

export function generateWebhookSecret(): string {
  const key = crypto.getRandomValues(new Uint8Array(WEBHOOK_SECRET_BYTES));
  return WEBHOOK_SECRET_PREFIX + bytesToBase64(key);
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The raw HMAC key inside a `whsec_` secret; throws with the reason when the secret is malformed. */
export function webhookSecretKey(secret: string): Uint8Array<ArrayBuffer> {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) throw new InvalidWebhookSecretError(`missing "${WEBHOOK_SECRET_PREFIX}" prefix`);
  const encoded = secret.slice(WEBHOOK_SECRET_PREFIX.length);
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) throw new InvalidWebhookSecretError('key material is not base64');
  const key = new Uint8Array(base64ToBytes(encoded));
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new InvalidWebhookSecretError(`key is ${key.length} bytes, expected ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES}`);
  }
  return key;
}
