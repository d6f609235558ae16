import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_RETRY_AFTER_SECONDS,
  MIN_RETRY_SPAN_SECONDS,
  nextRetryDelaySeconds,
  parseRetryAfter,
  PRODUCTION_RETRY_SCHEDULE,
  retryScheduleFromEnv,
  scaledRetrySchedule,
  WEBHOOK_MAX_ATTEMPTS,
  WEBHOOK_RETRY_CEILINGS_SECONDS,
  type WebhookRetrySchedule,
} from './retry-schedule.ts';

/** Plays the whole schedule for one delivery that always fails; returns the attempt times in seconds from the first. */
function playSchedule(randoms: readonly number[], schedule?: WebhookRetrySchedule): number[] {
  const first = new Date('2030-01-01T00:00:00Z');
  const times = [0];
  for (let attemptsMade = 1; ; attemptsMade++) {
    const now = new Date(first.getTime() + times.at(-1)! * 1000);
    const delay = nextRetryDelaySeconds({ attemptsMade, firstAttemptAt: first, now, random: randoms[attemptsMade - 1] ?? 0, ...(schedule ? { schedule } : {}) });
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

describe('a deployment\'s retry schedule (WEBHOOK_RETRY_SCALE)', () => {
  const HOUR_TO_SECOND = 1 / 3600;
  const randoms = fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 8, maxLength: 8 });

  it('is the production schedule, unscaled, when unset, empty or 1', () => {
    expect(retryScheduleFromEnv({})).toBe(PRODUCTION_RETRY_SCHEDULE);
    expect(retryScheduleFromEnv({ WEBHOOK_RETRY_SCALE: '' })).toBe(PRODUCTION_RETRY_SCHEDULE);
    expect(retryScheduleFromEnv({ WEBHOOK_RETRY_SCALE: '1' })).toBe(PRODUCTION_RETRY_SCHEDULE);
    expect(PRODUCTION_RETRY_SCHEDULE).toEqual({
      ceilingsSeconds: WEBHOOK_RETRY_CEILINGS_SECONDS,
      minSpanSeconds: 24 * 3600,
      maxRetryAfterSeconds: 12 * 3600,
    });
  });

  it('multiplies every duration and keeps the attempts: 1/3600 turns the 24 h span into 24 s', () => {
    const schedule = retryScheduleFromEnv({ WEBHOOK_RETRY_SCALE: String(HOUR_TO_SECOND) });
    expect(schedule.ceilingsSeconds).toHaveLength(WEBHOOK_RETRY_CEILINGS_SECONDS.length);
    schedule.ceilingsSeconds.forEach((ceiling, i) => expect(ceiling).toBeCloseTo(WEBHOOK_RETRY_CEILINGS_SECONDS[i]! / 3600, 12));
    expect(schedule.minSpanSeconds).toBeCloseTo(24, 12);
    expect(schedule.maxRetryAfterSeconds).toBeCloseTo(12, 12);
    fc.assert(
      fc.property(randoms, (draws) => {
        const times = playSchedule(draws, schedule);
        expect(times).toHaveLength(WEBHOOK_MAX_ATTEMPTS);
        expect(times.at(-1)!).toBeGreaterThanOrEqual(24);
        // Whole-second waits: each at most its scaled ceiling rounded up, so the whole span stays within a minute.
        for (let i = 1; i < times.length - 1; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(Math.ceil(schedule.ceilingsSeconds[i - 1]!));
        expect(Number.isInteger(times.at(-1)!)).toBe(true);
        expect(times.at(-1)!).toBeLessThan(60);
      }),
    );
  });

  it('caps a receiver\'s Retry-After at the scaled cap', () => {
    const schedule = scaledRetrySchedule(HOUR_TO_SECOND);
    const first = new Date(0);
    expect(nextRetryDelaySeconds({ attemptsMade: 1, firstAttemptAt: first, now: first, random: 0, retryAfterSeconds: 5, schedule })).toBe(5);
    expect(nextRetryDelaySeconds({ attemptsMade: 1, firstAttemptAt: first, now: first, random: 0, retryAfterSeconds: 3600, schedule })).toBe(12);
  });

  it('accepts decimals and exponents; refuses anything outside (0, 1] with the value in the message', () => {
    expect(retryScheduleFromEnv({ WEBHOOK_RETRY_SCALE: '0.5' }).minSpanSeconds).toBe(12 * 3600);
    expect(retryScheduleFromEnv({ WEBHOOK_RETRY_SCALE: ' 1e-3 ' }).minSpanSeconds).toBeCloseTo(86.4, 9);
    for (const bad of ['0', '-0.5', '2', '1.0001', 'abc', '1/3600', 'Infinity', 'NaN', '0x1', '.']) {
      expect(() => retryScheduleFromEnv({ WEBHOOK_RETRY_SCALE: bad }), bad).toThrow(`WEBHOOK_RETRY_SCALE must be a decimal number in (0, 1], got "${bad}"`);
    }
    expect(() => scaledRetrySchedule(0)).toThrow(/\(0, 1\]/);
    expect(() => scaledRetrySchedule(Number.NaN)).toThrow(/\(0, 1\]/);
  });
});
