// API keys: `hdb_live_…` (tenant) and `hdb_admin_…` (admin), 32 random base62 characters. Shown once; stored as a
// SHA-256 hash with a short display prefix (DESIGN §6).
import { sha256Hex } from '../contract/index.ts';

export type KeyRole = 'tenant' | 'admin';
export const KEY_PREFIXES: Record<KeyRole, string> = { tenant: 'hdb_live_', admin: 'hdb_admin_' };
const SECRET_LENGTH = 32;
/** Prefix plus this many secret characters are kept in clear to recognise a key in a list. */
const DISPLAY_SECRET_CHARS = 4;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_PATTERN = /^hdb_(live|admin)_[0-9A-Za-z]{32}$/;

export function generateApiKey(role: KeyRole): { key: string; displayPrefix: string } {
  // 62 * 4 = 248 ≤ 256: rejecting bytes ≥ 248 keeps every character equally likely.
  let secret = '';
  while (secret.length < SECRET_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(SECRET_LENGTH))) {
      if (byte < 248 && secret.length < SECRET_LENGTH) secret += BASE62[byte % 62];
    }
  }
  const key = KEY_PREFIXES[role] + secret;
  return { key, displayPrefix: key.slice(0, KEY_PREFIXES[role].length + DISPLAY_SECRET_CHARS) };
}

export function isWellFormedKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(key);
}
