// Short-lived signed URLs through which the runner fetches large inputs from R2 (CONTRACT.md "source").
import { bytesToBase64 } from '../../contract/index.ts';

export const INPUT_URL_TTL_SECONDS = 3600;
export const INPUT_PATH = '/internal/runner/inputs';

async function mac(secret: string, key: string, expires: number): Promise<string> {
  const hmacKey = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = await crypto.subtle.sign('HMAC', hmacKey, new TextEncoder().encode(`input.${key}.${expires}`));
  return bytesToBase64(new Uint8Array(signature)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export async function signedInputUrl(publicUrl: string, secret: string, key: string, now = Date.now()): Promise<string> {
  const expires = Math.floor(now / 1000) + INPUT_URL_TTL_SECONDS;
  const url = new URL(INPUT_PATH, publicUrl);
  url.searchParams.set('key', key);
  url.searchParams.set('expires', String(expires));
  url.searchParams.set('signature', await mac(secret, key, expires));
  return url.toString();
}

export async function verifyInputUrl(secrets: string[], url: URL, now = Date.now()): Promise<string | null> {
  const key = url.searchParams.get('key');
  const expires = Number(url.searchParams.get('expires'));
  const signature = url.searchParams.get('signature');
  if (!key || !signature || !Number.isInteger(expires) || expires * 1000 < now) return null;
  for (const secret of secrets) {
    // Both sides are our own base64url MACs of equal length; a timing leak here would reveal nothing reusable
    // because every URL expires, but compare without early exit anyway.
    const expected = await mac(secret, key, expires);
    let diff = expected.length ^ signature.length;
    for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ (signature.charCodeAt(i) || 0);
    if (diff === 0) return key;
  }
  return null;
}
