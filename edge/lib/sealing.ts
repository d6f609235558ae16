// Values sealed at rest under a key-encryption key (KEK) that lives in a Worker secret, never in the database: a dump
// of PostgreSQL alone reveals nothing it protects. AES-256-GCM through WebCrypto, a random 96-bit IV per value (the
// IV length NIST SP 800-38D §8.2 recommends), and the row it belongs to as additional data, so a sealed value copied
// onto another row (another tenant) does not open. Each value is stored beside the id of the key that sealed it,
// which is what lets the key rotate: old keys keep opening, only the active key seals (edge/webhooks/README.md).

// Sealed values are tens of bytes, so spreading them into fromCharCode is safe.
const bytesToBase64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes));
const base64ToBytes = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** AES-256: the key is 32 bytes of base64. */
export const SEALING_KEY_BYTES = 32;
const IV_BYTES = 12;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

export type Sealed = { keyId: string; sealed: string };

export class SealingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealingConfigError';
  }
}

/** A value sealed under a key this deployment no longer has, or bytes that do not authenticate. */
export class UnsealError extends Error {
  constructor(
    message: string,
    readonly keyId: string,
  ) {
    super(message);
    this.name = 'UnsealError';
  }
}

export interface Keyring {
  /** Seals with this key; the others only open. */
  readonly activeKeyId: string;
  readonly keyIds: readonly string[];
  seal(plaintext: string, context: string): Promise<Sealed>;
  open(value: Sealed, context: string): Promise<string>;
}

/**
 * Parses `id:base64key[,id:base64key…]`: the first key is the active one; the rest are earlier keys kept so that
 * values sealed under them still open until a re-seal has moved them.
 */
export async function parseKeyring(spec: string, name = 'the sealing keys'): Promise<Keyring> {
  const entries = spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (entries.length === 0) throw new SealingConfigError(`${name}: no key (expected "id:base64key[,id:base64key…]")`);
  const keys = new Map<string, Awaited<ReturnType<typeof crypto.subtle.importKey>>>();
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    if (!KEY_ID.test(id)) throw new SealingConfigError(`${name}: each key needs an id of 1 to 32 letters, digits, "_" or "-" before ":"`);
    if (keys.has(id)) throw new SealingConfigError(`${name}: key id "${id}" appears twice`);
    let raw: Uint8Array;
    try {
      raw = base64ToBytes(entry.slice(colon + 1));
    } catch {
      throw new SealingConfigError(`${name}: key "${id}" is not base64`);
    }
    if (raw.length !== SEALING_KEY_BYTES) throw new SealingConfigError(`${name}: key "${id}" is ${raw.length} bytes, expected ${SEALING_KEY_BYTES}`);
    keys.set(id, await crypto.subtle.importKey('raw', new Uint8Array(raw), 'AES-GCM', false, ['encrypt', 'decrypt']));
  }
  const activeKeyId = entries[0]!.slice(0, entries[0]!.indexOf(':'));
  const encoder = new TextEncoder();

  return {
    activeKeyId,
    keyIds: [...keys.keys()],
    async seal(plaintext, context) {
      const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
      const cipher = new Uint8Array(
        await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(context) }, keys.get(activeKeyId)!, encoder.encode(plaintext)),
      );
      const out = new Uint8Array(IV_BYTES + cipher.length);
      out.set(iv);
      out.set(cipher, IV_BYTES);
      return { keyId: activeKeyId, sealed: bytesToBase64(out) };
    },
    async open(value, context) {
      const key = keys.get(value.keyId);
      if (!key) throw new UnsealError(`sealed under key "${value.keyId}", which is not among the configured keys (${[...keys.keys()].join(', ')})`, value.keyId);
      const bytes = base64ToBytes(value.sealed);
      try {
        const plain = await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: new Uint8Array(bytes.subarray(0, IV_BYTES)), additionalData: encoder.encode(context) },
          key,
          new Uint8Array(bytes.subarray(IV_BYTES)),
        );
        return new TextDecoder().decode(plain);
      } catch {
        throw new UnsealError(`a value sealed under key "${value.keyId}" does not authenticate (altered, or moved from another row)`, value.keyId);
      }
    },
  };
}

/** A fresh key in the `id:base64key` form the keyring takes (the local stack and the tests mint theirs with it). */
export function generateSealingKey(id: string): string {
  if (!KEY_ID.test(id)) throw new SealingConfigError(`key id "${id}" must be 1 to 32 letters, digits, "_" or "-"`);
  return `${id}:${bytesToBase64(crypto.getRandomValues(new Uint8Array(SEALING_KEY_BYTES)))}`;
}
