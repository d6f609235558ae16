// Delivers outbox events to the edge, signed, one at a time in order, retrying with exponential backoff and jitter
// until the edge acknowledges (CONTRACT.md: the edge answers 200 with an EventAck, also for duplicates and stale
// events). An entry leaves the outbox only on acknowledgement, or to dead letters when the edge refuses it for good.
import { EventAck, signMessage } from '../../../contract/index.ts';
import type { Logger } from '../log.ts';
import type { RunnerMetrics } from '../metrics.ts';
import type { Outbox, OutboxEntry } from './outbox.ts';

/**
 * Client errors that pass with time: 401 (a secret rotation or clock skew being fixed: the results wait on disk rather
 * than being dropped), timeout, 409 (CONTRACT.md: the job changed while its result was stored; send again), too
 * early, rate limit. Other 4xx (404 unknown job, 422 malformed) are permanent: the event goes to dead letters.
 */
const RETRYABLE_CLIENT_STATUSES = new Set([401, 408, 409, 425, 429]);

export type EventSenderOptions = {
  outbox: Outbox;
  secret: string;
  log: Logger;
  metrics: RunnerMetrics;
  retryMinMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  /** Called with each acknowledgement, e.g. to stop a job the edge canceled. */
  onAck?: (entry: OutboxEntry, ack: EventAck) => void;
};

type Attempt = { kind: 'acked'; ack: EventAck } | { kind: 'retry'; reason: string; retryAfterMs?: number } | { kind: 'refused'; reason: string };

export class EventSender {
  private running = false;
  private wakeIdle: (() => void) | undefined;
  private wakeSleep: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly drainedWaiters = new Set<() => void>();
  private readonly inFlight = new Set<number>();
  private failures = 0;
  private sleepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: EventSenderOptions) {}

  /** Sequence numbers being sent now: the outbox must not coalesce them away. */
  get inFlightSeqs(): ReadonlySet<number> {
    return this.inFlight;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /**
   * Wakes the loop after an event was added. A loop backing off from a failing edge keeps its delay, unless
   * `retryNow` (shutdown flush), so new events do not turn backoff into a flood.
   */
  notify(options: { retryNow?: boolean } = {}): void {
    this.wakeIdle?.();
    if (options.retryNow) {
      if (this.sleepTimer) clearTimeout(this.sleepTimer);
      this.wakeSleep?.();
    }
  }

  /** Resolves true once the outbox is empty, false when `timeoutMs` passes first. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.options.outbox.size === 0) return true;
    this.notify({ retryNow: true });
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.drainedWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.drainedWaiters.delete(done);
        resolve(this.options.outbox.size === 0);
      }, timeoutMs);
      this.drainedWaiters.add(done);
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify({ retryNow: true });
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    const { outbox, metrics } = this.options;
    while (this.running) {
      metrics.outboxPending.set(outbox.size);
      const entry = outbox.next();
      if (!entry) {
        for (const done of [...this.drainedWaiters]) done();
        await new Promise<void>((resolve) => (this.wakeIdle = resolve));
        this.wakeIdle = undefined;
        continue;
      }
      this.inFlight.add(entry.seq);
      const attempt = await this.send(entry);
      this.inFlight.delete(entry.seq);
      if (attempt.kind === 'acked') {
        this.failures = 0;
        await outbox.remove(entry);
        this.options.onAck?.(entry, attempt.ack);
        continue;
      }
      if (attempt.kind === 'refused') {
        this.failures = 0;
        metrics.eventsDeadLettered.inc();
        await outbox.deadLetter(entry, attempt.reason);
        continue;
      }
      metrics.eventDeliveryFailures.inc({ reason: attempt.reason.split(':')[0] ?? 'unknown' });
      const delayMs = this.backoffMs(attempt.retryAfterMs);
      this.failures++;
      this.options.log.warn('event delivery failed, retrying', {
        job_id: entry.event.job_id,
        event_id: entry.event.event_id,
        type: entry.event.type,
        reason: attempt.reason,
        retry_in_ms: Math.round(delayMs),
      });
      await this.sleep(delayMs);
    }
  }

  private backoffMs(retryAfterMs: number | undefined): number {
    const { retryMinMs, retryMaxMs } = this.options;
    const exponential = Math.min(retryMaxMs, retryMinMs * 2 ** this.failures);
    // "Equal jitter": keeps at least half the delay, spreads the rest, so many runners do not retry in lockstep.
    const jittered = exponential / 2 + (Math.random() * exponential) / 2;
    return Math.min(retryMaxMs, Math.max(jittered, retryAfterMs ?? 0));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeSleep = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    }).then(() => {
      this.wakeSleep = undefined;
      this.sleepTimer = undefined;
    });
  }

  private async send(entry: OutboxEntry): Promise<Attempt> {
    let response: Response;
    try {
      const body = entry.body ?? JSON.stringify(entry.event);
      // CONTRACT.md: an event's message id is its event_id, so the edge's replay and duplicate checks agree.
      const signature = await signMessage(
        this.options.secret,
        { method: 'POST', path: new URL(entry.eventsUrl).pathname, body },
        { id: entry.event.event_id },
      );
      response = await fetch(entry.eventsUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signature },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        redirect: 'error',
      });
    } catch (error) {
      return { kind: 'retry', reason: `network: ${error instanceof Error ? error.message : String(error)}` };
    }
    const text = await response.text().catch(() => '');
    if (response.ok) {
      const ack = parseAck(text);
      if (ack) return { kind: 'acked', ack };
      return { kind: 'retry', reason: `bad_ack: HTTP ${response.status} without an EventAck body` };
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    if (response.status >= 500 || RETRYABLE_CLIENT_STATUSES.has(response.status)) {
      return { kind: 'retry', reason: `http_${response.status}: ${text.slice(0, 200)}`, ...(retryAfterMs ? { retryAfterMs } : {}) };
    }
    return { kind: 'refused', reason: `HTTP ${response.status}: ${text.slice(0, 500)}` };
  }
}

function parseAck(text: string): EventAck | undefined {
  try {
    const parsed = EventAck.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
