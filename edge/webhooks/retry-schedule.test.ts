import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_RETRY_AFTER_SECONDS,
  MIN_RETRY_SPAN_SECONDS,
  nextRetryDelaySeconds,
  parseRetryAfter,
  WEBHOOK_MAX_ATTEMPTS,
  WEBHOOK_RETRY_CEILINGS_SECONDS,
} from './retry-schedule.ts';

/** Plays the whole schedule for one delivery that always fails; returns the attempt times in seconds from the first. */
function playSchedule(randoms: readonly number[]): number[] {
  const first = new Date('2030-01-01T00:00:00Z');
  const times = [0];
  for (let attemptsMade = 1; ; attemptsMade++) {
    const now = new Date(first.getTime() + times.at(-1)! * 1000);
    const delay = nextRetryDelaySeconds({ attemptsMade, firstAttemptAt: first, now, random: randoms[attemptsMade - 1] ?? 0 });
    if (delay === null) return times;
    times.push(times.at(-1)! + delay);
  }
}

describe('webhook retry schedule', () => {
  it('makes at least 8 attempts', () => {
    expect(WEBHOOK_MAX_ATTEMPTS).toBeGreaterThanOrEqual(8);
    expect(playSchedule([])).toHaveLength(WEBHOOK_MAX_ATTEMPTS);
  });

  it('grows exponentially and no single ceiling exceeds 12 h', () => {
    for (let i = 1; i < WEBHOOK_RETRY_CEILINGS_SECONDS.length; i++) {
      expect(WEBHOOK_RETRY_CEILINGS_SECONDS[i]!).toBeGreaterThanOrEqual(WEBHOOK_RETRY_CEILINGS_SECONDS[i - 1]!);
    }
    expect(Math.max(...WEBHOOK_RETRY_CEILINGS_SECONDS)).toBeLessThanOrEqual(12 * 3600);
    expect(WEBHOOK_RETRY_CEILINGS_SECONDS[1]! / WEBHOOK_RETRY_CEILINGS_SECONDS[0]!).toBe(4);
  });

  it('spans at least 24 h whatever the jitter draws, and each wait stays within [0, ceiling] before the last', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 8, maxLength: 8 }), (randoms) => {
        const times = playSchedule(randoms);
        expect(times).toHaveLength(WEBHOOK_MAX_ATTEMPTS);
        expect(times.at(-1)!).toBeGreaterThanOrEqual(MIN_RETRY_SPAN_SECONDS);
        for (let i = 1; i < times.length - 1; i++) {
          const wait = times[i]! - times[i - 1]!;
          expect(wait).toBeGreaterThanOrEqual(0);
          expect(wait).toBeLessThanOrEqual(WEBHOOK_RETRY_CEILINGS_SECONDS[i - 1]!);
        }
      }),
    );
  });

  it('uses full jitter: the wait is random × ceiling', () => {
    const first = new Date(0);
    expect(nextRetryDelaySeconds({ attemptsMade: 3, firstAttemptAt: first, now: first, random: 0 })).toBe(0);
    expect(nextRetryDelaySeconds({ attemptsMade: 3, firstAttemptAt: first, now: first, random: 0.5 })).toBe(480);
    expect(nextRetryDelaySeconds({ attemptsMade: 3, firstAttemptAt: first, now: first, random: 0.999999 })).toBe(959);
  });

  it('honours a longer Retry-After, capped at 12 h', () => {
    const first = new Date(0);
    expect(nextRetryDelaySeconds({ attemptsMade: 1, firstAttemptAt: first, now: first, random: 0, retryAfterSeconds: 120 })).toBe(120);
    expect(nextRetryDelaySeconds({ attemptsMade: 1, firstAttemptAt: first, now: first, random: 0.5, retryAfterSeconds: 1 })).toBe(30);
    expect(nextRetryDelaySeconds({ attemptsMade: 1, firstAttemptAt: first, now: first, random: 0, retryAfterSeconds: 10 ** 9 })).toBe(
      MAX_RETRY_AFTER_SECONDS,
    );
  });

  it('rejects a nonsensical attempt count', () => {
    expect(() => nextRetryDelaySeconds({ attemptsMade: 0, firstAttemptAt: new Date(0), now: new Date(0), random: 0 })).toThrow();
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:05:00 GMT', now)).toBe(300);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});
