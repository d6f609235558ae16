import { describe, expect, it } from 'vitest';
import { ApiKeyCache, type CachedApiKey } from './api-key-cache.ts';

const key = (id: string): CachedApiKey => ({ id, role: 'tenant', tenantId: 'ten_1', revokedAt: null, lastUsedAt: null });

describe('the per-isolate API key cache', () => {
  it('answers for a key until its time to live has passed, then asks the database again', () => {
    let now = 1_000;
    const cache = new ApiKeyCache(10_000, 100, () => now);
    cache.set('hash-a', key('key_a'));
    now += 9_999;
    expect(cache.get('hash-a')?.id).toBe('key_a');
    now += 1;
    expect(cache.get('hash-a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('forgets a key by id at once (the revoking isolate)', () => {
    const cache = new ApiKeyCache(10_000, 100, () => 0);
    cache.set('hash-a', key('key_a'));
    cache.set('hash-b', key('key_b'));
    cache.forgetKey('key_a');
    expect(cache.get('hash-a')).toBeUndefined();
    expect(cache.get('hash-b')?.id).toBe('key_b');
  });

  it('keeps at most maxEntries, dropping the oldest', () => {
    const cache = new ApiKeyCache(10_000, 2, () => 0);
    cache.set('hash-a', key('key_a'));
    cache.set('hash-b', key('key_b'));
    cache.set('hash-c', key('key_c'));
    expect(cache.size).toBe(2);
    expect(cache.get('hash-a')).toBeUndefined();
    expect(cache.get('hash-c')?.id).toBe('key_c');
  });

  it('restarts the time to live of a key stored again', () => {
    let now = 0;
    const cache = new ApiKeyCache(10_000, 100, () => now);
    cache.set('hash-a', key('key_a'));
    now = 8_000;
    cache.set('hash-a', key('key_a'));
    now = 15_000;
    expect(cache.get('hash-a')?.id).toBe('key_a');
  });
});
