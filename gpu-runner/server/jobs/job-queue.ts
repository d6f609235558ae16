// A bounded in-memory queue with a fixed number of execution slots (one job per GPU by default, docs/architecture.md; a
// full queue answers 503 with Retry-After; duplicate job ids accepted once). The queue owns job state; what running a
// job means is the `run` function given to it.
import type { JobRequest, RunnerError } from '../../../contract/index.ts';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';
export type Progress = { step: number; total_steps: number };

export type JobRecord = {
  readonly id: string;
  /** The latest attempt the edge dispatched; events are reported under it. */
  attempt: number;
  readonly request: JobRequest;
  status: JobStatus;
  progress: Progress | undefined;
  error: RunnerError | undefined;
  readonly queuedAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  readonly controller: AbortController;
};

export type SubmitOutcome =
  | { kind: 'accepted'; record: JobRecord }
  | { kind: 'duplicate'; record: JobRecord }
  | { kind: 'full'; retryAfterSeconds: number }
  | { kind: 'closed' };

export type CancelOutcome = 'canceled' | 'canceling' | 'already_finished' | 'unknown';

/** Why a job was aborted: by the edge (cancel) or by this runner stopping (the edge re-dispatches it). */
export type AbortReason = 'canceled' | 'shutdown';

/** Retry-After bounds: at least one second (HTTP granularity), at most what a queue consumer sensibly waits. */
const MIN_RETRY_AFTER_SECONDS = 1;
const MAX_RETRY_AFTER_SECONDS = 300;
/** Before the first job finishes there is no duration to go by. */
const DEFAULT_JOB_SECONDS = 10;
/** Weight of the newest job in the running mean of job durations. */
const DURATION_SMOOTHING = 0.3;

export type JobQueueOptions = {
  concurrency: number;
  capacity: number;
  retentionMs: number;
  /** Runs one job to its end and calls `finish`; must not throw (it reports failures itself). */
  run: (record: JobRecord) => Promise<void>;
  now?: () => number;
};

export class JobQueue {
  private readonly records = new Map<string, JobRecord>();
  private readonly waiting: JobRecord[] = [];
  private readonly active = new Set<JobRecord>();
  private readonly idleWaiters = new Set<() => void>();
  private meanJobSeconds: number | undefined;
  private accepting = true;
  private readonly now: () => number;

  constructor(private readonly options: JobQueueOptions) {
    this.now = options.now ?? Date.now;
  }

  get depth(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.active.size;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  /** Full when every slot is busy and the waiting line is at capacity. */
  get isFull(): boolean {
    return this.active.size >= this.options.concurrency && this.waiting.length >= this.options.capacity;
  }

  get(id: string): JobRecord | undefined {
    this.forgetExpired();
    return this.records.get(id);
  }

  /** `beforeStart` runs once the job is accepted and before it can start (it may start at once). */
  submit(request: JobRequest, beforeStart?: () => void): SubmitOutcome {
    this.forgetExpired();
    const known = this.records.get(request.job_id);
    if (known) {
      const finished = known.status !== 'queued' && known.status !== 'running';
      // A re-dispatch (higher attempt) of a job that ended here is new work. While the job is still here it is the
      // same work, reported from now on under the newest attempt so the edge does not discard its events as stale.
      if (!finished || request.attempt <= known.attempt) {
        known.attempt = Math.max(known.attempt, request.attempt);
        return { kind: 'duplicate', record: known };
      }
    }
    if (!this.accepting) return { kind: 'closed' };
    if (this.isFull) return { kind: 'full', retryAfterSeconds: this.retryAfterSeconds() };
    const record: JobRecord = {
      id: request.job_id,
      attempt: request.attempt,
      request,
      status: 'queued',
      progress: undefined,
      error: undefined,
      queuedAt: this.now(),
      startedAt: undefined,
      finishedAt: undefined,
      controller: new AbortController(),
    };
    this.records.set(record.id, record);
    this.waiting.push(record);
    beforeStart?.();
    this.pump();
    return { kind: 'accepted', record };
  }

  /** Records a job's end. */
  finish(record: JobRecord, status: 'succeeded' | 'failed' | 'canceled', error?: RunnerError): void {
    record.status = status;
    record.error = error;
    record.finishedAt = this.now();
    if (record.startedAt !== undefined) {
      const seconds = (record.finishedAt - record.startedAt) / 1000;
      this.meanJobSeconds =
        this.meanJobSeconds === undefined
          ? seconds
          : DURATION_SMOOTHING * seconds + (1 - DURATION_SMOOTHING) * this.meanJobSeconds;
    }
  }

  /**
   * Takes a queued job out at once (`canceled`: the caller reports it), or asks a running one to stop between
   * steps (`canceling`).
   */
  cancel(id: string): { outcome: CancelOutcome; record?: JobRecord } {
    const record = this.records.get(id);
    if (!record) return { outcome: 'unknown' };
    if (record.status === 'queued') {
      this.waiting.splice(this.waiting.indexOf(record), 1);
      record.controller.abort('canceled' satisfies AbortReason);
      return { outcome: 'canceled', record };
    }
    if (record.status === 'running') {
      record.controller.abort('canceled' satisfies AbortReason);
      return { outcome: 'canceling', record };
    }
    return { outcome: 'already_finished', record };
  }

  /** Stops accepting; returns the jobs that had not started (the caller hands them back to the edge). */
  close(): JobRecord[] {
    this.accepting = false;
    const notStarted = this.waiting.splice(0);
    for (const record of notStarted) record.controller.abort('shutdown' satisfies AbortReason);
    return notStarted;
  }

  /** Asks every running job to stop between steps. */
  abortRunning(reason: AbortReason): void {
    for (const record of this.active) record.controller.abort(reason);
  }

  /** Resolves true when no job runs, false when `timeoutMs` passes first. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.active.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        resolve(this.active.size === 0);
      }, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  /** How long a refused client should wait: about until one slot frees, i.e. a mean job time per slot. */
  retryAfterSeconds(): number {
    const seconds = Math.ceil((this.meanJobSeconds ?? DEFAULT_JOB_SECONDS) / this.options.concurrency);
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(MIN_RETRY_AFTER_SECONDS, seconds));
  }

  private pump(): void {
    while (this.accepting && this.active.size < this.options.concurrency && this.waiting.length > 0) {
      const record = this.waiting.shift() as JobRecord;
      this.active.add(record);
      record.status = 'running';
      record.startedAt = this.now();
      void this.options.run(record).finally(() => {
        this.active.delete(record);
        if (record.status === 'running') this.finish(record, 'failed');
        if (this.active.size === 0) for (const done of [...this.idleWaiters]) done();
        this.pump();
      });
    }
  }

  private forgetExpired(): void {
    const horizon = this.now() - this.options.retentionMs;
    for (const [id, record] of this.records) {
      if (record.finishedAt !== undefined && record.finishedAt < horizon) this.records.delete(id);
    }
  }
}
