/**
 * When a failed webhook is tried again.
 *
 * Rationale:
 * - Exponential growth (×4 from one minute) clears the common short failures fast (a deploy, a cold start, a rate
 *   limit: minutes) while the long tail covers an outage of a day, the span Standard Webhooks' reference providers
 *   retry over (Svix: 8 attempts over ~27 h).
 * - Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015: wait = random(0, ceiling)) spreads the
 *   retries of every tenant event that failed during the same receiver outage, so the receiver is not hit by a
 *   synchronized wave when it comes back.
 * - Full jitter alone could bunch all retries early; the final attempt is therefore never earlier than
 *   `MIN_RETRY_SPAN_SECONDS` after the first, which makes "a receiver down for 24 h still gets the event" a guarantee
 *   rather than an expectation.
 * - Each ceiling is at most 12 h, which is also the longest delay a Cloudflare Queue message accepts; longer waits
 *   (the final one may be) are bridged by re-enqueueing with the remaining delay.
 */
export const WEBHOOK_RETRY_CEILINGS_SECONDS: readonly number[] = [
  60, // before attempt 2: 1 min
  4 * 60, // 3: 4 min
  16 * 60, // 4: 16 min
  64 * 60, // 5: ~1 h
  256 * 60, // 6: ~4 h
  12 * 3600, // 7: 12 h (×4 would be 17 h; capped)
  12 * 3600, // 8: 12 h
];

/** First attempt plus one per ceiling. */
export const WEBHOOK_MAX_ATTEMPTS = WEBHOOK_RETRY_CEILINGS_SECONDS.length + 1;

/** The last attempt happens at least this long after the first. */
export const MIN_RETRY_SPAN_SECONDS = 24 * 3600;

/** A receiver's `Retry-After` is honoured up to this, so a hostile value cannot park a delivery forever. */
export const MAX_RETRY_AFTER_SECONDS = 12 * 3600;

/**
 * Delay in seconds before attempt `attemptsMade + 1`, or `null` when `attemptsMade` attempts exhaust the schedule
 * (the delivery becomes a dead letter). `random` is in [0, 1); `firstAttemptAt` anchors the minimum span.
 */
export function nextRetryDelaySeconds(input: {
  attemptsMade: number;
  firstAttemptAt: Date;
  now: Date;
  random: number;
  retryAfterSeconds?: number | null;
}): number | null {
  const { attemptsMade } = input;
  if (!Number.isInteger(attemptsMade) || attemptsMade < 1) throw new Error(`attemptsMade must be >= 1, got ${attemptsMade}`);
  if (attemptsMade >= WEBHOOK_MAX_ATTEMPTS) return null;
  const ceiling = WEBHOOK_RETRY_CEILINGS_SECONDS[attemptsMade - 1]!;
  let delay = Math.floor(input.random * ceiling);
  if (input.retryAfterSeconds != null && input.retryAfterSeconds > delay) {
    delay = Math.min(Math.ceil(input.retryAfterSeconds), MAX_RETRY_AFTER_SECONDS);
  }
  const isFinalAttempt = attemptsMade + 1 === WEBHOOK_MAX_ATTEMPTS;
  if (isFinalAttempt) {
    const elapsed = (input.now.getTime() - input.firstAttemptAt.getTime()) / 1000;
    delay = Math.max(delay, Math.ceil(MIN_RETRY_SPAN_SECONDS - elapsed));
  }
  return Math.max(0, delay);
}

/** `Retry-After` as seconds (delta or HTTP date), or null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: Date): number | null {
  if (value == null || value.trim() === '') return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now.getTime()) / 1000));
}
