// API keys verified recently, per isolate: key hash → the key's row, for at most API_KEY_CACHE_TTL_MS. Saves the
// key lookup (a database round trip) on most requests of a busy key.
//
// Revocation: the isolate that revokes a key (POST /v1/admin/keys/{id}/revoke) forgets it at once; every other
// isolate refuses it at the latest API_KEY_CACHE_TTL_MS after the revocation, when its entry expires. Unknown keys are
// never cached (a key created a moment ago must work, and random guesses must not fill the cache).
import type { KeyRole } from './api-keys.ts';

/** How long another isolate may still accept a revoked key. */
export const API_KEY_CACHE_TTL_MS = 10_000;
/** Entries kept per isolate; the oldest is dropped beyond it. */
export const API_KEY_CACHE_MAX_ENTRIES = 10_000;

export type CachedApiKey = {
  readonly id: string;
  readonly role: KeyRole;
  readonly tenantId: string | null;
  readonly revokedAt: Date | null;
  lastUsedAt: Date | null;
};

export class ApiKeyCache {
  private readonly entries = new Map<string, { key: CachedApiKey; expiresAt: number }>();

  constructor(
    readonly ttlMs = API_KEY_CACHE_TTL_MS,
    readonly maxEntries = API_KEY_CACHE_MAX_ENTRIES,
    private readonly now: () => number = Date.now,
  ) {}

  get(keyHash: string): CachedApiKey | undefined {
    const entry = this.entries.get(keyHash);
    if (!entry) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.entries.delete(keyHash);
      return undefined;
    }
    return entry.key;
  }

  set(keyHash: string, key: CachedApiKey): void {
    this.entries.delete(keyHash);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(keyHash, { key, expiresAt: this.now() + this.ttlMs });
  }

  /** Drops the key with this id (its hash is not known where keys are revoked by id). */
  forgetKey(keyId: string): void {
    for (const [hash, entry] of this.entries) {
      if (entry.key.id === keyId) this.entries.delete(hash);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

/** This isolate's cache, shared by every request it serves. */
export const apiKeyCache = new ApiKeyCache();
