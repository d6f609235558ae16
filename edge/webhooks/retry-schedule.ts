import { z } from 'zod';

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
 * - A deployment may compress every duration of the schedule by one factor (`WEBHOOK_RETRY_SCALE`, see
 *   `retryScheduleFromEnv`) so that end-to-end tests can reach a dead letter in seconds; the number of attempts and the
 *   shape stay those of production, and production runs the schedule below unscaled.
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

/** Every duration a retry schedule is made of; the number of attempts is `ceilingsSeconds.length + 1`. */
export interface WebhookRetrySchedule {
  /** Ceiling of the (jittered) wait before attempt 2, 3, …; fractions of a second are allowed in a scaled schedule. */
  readonly ceilingsSeconds: readonly number[];
  readonly minSpanSeconds: number;
  readonly maxRetryAfterSeconds: number;
}

export const PRODUCTION_RETRY_SCHEDULE: WebhookRetrySchedule = Object.freeze({
  ceilingsSeconds: WEBHOOK_RETRY_CEILINGS_SECONDS,
  minSpanSeconds: MIN_RETRY_SPAN_SECONDS,
  maxRetryAfterSeconds: MAX_RETRY_AFTER_SECONDS,
});

/** Infinity and NaN are not numbers to zod 4. */
const retryScaleSchema = z.number().gt(0).lte(1);

/** The production schedule with every duration multiplied by `scale` (0 < scale <= 1); same attempts, same shape. */
export function scaledRetrySchedule(scale: number): WebhookRetrySchedule {
  const parsed = retryScaleSchema.safeParse(scale);
  if (!parsed.success) throw new Error(`the webhook retry scale must be a number in (0, 1], got ${scale}`);
  if (parsed.data === 1) return PRODUCTION_RETRY_SCHEDULE;
  return Object.freeze({
    ceilingsSeconds: Object.freeze(WEBHOOK_RETRY_CEILINGS_SECONDS.map((ceiling) => ceiling * parsed.data)),
    minSpanSeconds: MIN_RETRY_SPAN_SECONDS * parsed.data,
    maxRetryAfterSeconds: MAX_RETRY_AFTER_SECONDS * parsed.data,
  });
}

/**
 * The schedule of a deployment: `WEBHOOK_RETRY_SCALE` unset or empty is production's; otherwise a decimal in (0, 1]
 * that multiplies every duration (1/3600, i.e. "0.000277…", turns the 24 h span into 24 s for the end-to-end tests).
 * Anything else is a configuration error, reported with the value.
 */
export function retryScheduleFromEnv(env: { WEBHOOK_RETRY_SCALE?: string | undefined }): WebhookRetrySchedule {
  const raw = env.WEBHOOK_RETRY_SCALE?.trim();
  if (raw === undefined || raw === '') return PRODUCTION_RETRY_SCHEDULE;
  const parsed = z.string().regex(/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i).transform(Number).pipe(retryScaleSchema).safeParse(raw);
  if (!parsed.success) throw new Error(`WEBHOOK_RETRY_SCALE must be a decimal number in (0, 1], got "${env.WEBHOOK_RETRY_SCALE}"`);
  return scaledRetrySchedule(parsed.data);
}

/**
 * Delay in seconds before attempt `attemptsMade + 1`, or `null` when `attemptsMade` attempts exhaust the schedule
 * (the delivery becomes a dead letter). `random` is in [0, 1); `firstAttemptAt` anchors the minimum span.
 * Whole seconds (what a Queue delay takes), never shorter than the schedule asks.
 */
export function nextRetryDelaySeconds(input: {
  attemptsMade: number;
  firstAttemptAt: Date;
  now: Date;
  random: number;
  retryAfterSeconds?: number | null;
  schedule?: WebhookRetrySchedule;
}): number | null {
  const { attemptsMade } = input;
  const schedule = input.schedule ?? PRODUCTION_RETRY_SCHEDULE;
  const maxAttempts = schedule.ceilingsSeconds.length + 1;
  if (!Number.isInteger(attemptsMade) || attemptsMade < 1) throw new Error(`attemptsMade must be >= 1, got ${attemptsMade}`);
  if (attemptsMade >= maxAttempts) return null;
  const ceiling = schedule.ceilingsSeconds[attemptsMade - 1]!;
  let delay = Math.floor(input.random * ceiling);
  if (input.retryAfterSeconds != null && input.retryAfterSeconds > delay) {
    delay = Math.min(Math.ceil(input.retryAfterSeconds), schedule.maxRetryAfterSeconds);
  }
  const isFinalAttempt = attemptsMade + 1 === maxAttempts;
  if (isFinalAttempt) {
    const elapsed = (input.now.getTime() - input.firstAttemptAt.getTime()) / 1000;
    delay = Math.max(delay, schedule.minSpanSeconds - elapsed);
  }
  return Math.max(0, Math.ceil(delay));
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
