// The runner service: queue, execution, events and shutdown, without HTTP (app.ts adds that). A job's life here:
// queued → running (`started`) → progress at most once per interval → `succeeded` or `failed`, every event written to
// the outbox before it is sent, so nothing is lost while the edge is unreachable.
import type { JobRequest, RunnerError, RunnerEvent, WeightsCheckResult } from '../../contract/index.ts';
import type { RunnerConfig } from './config.ts';
import type { Outbox, OutboxEntry } from './events/outbox.ts';
import { EventSender } from './events/sender.ts';
import { throwIfAborted, toRunnerError, type ExecutionContext, type JobExecutor } from './jobs/executor.ts';
import {
  generateInput,
  generationResult,
  personalizationResult,
  personalizeInput,
  precheckJob,
  type InputLimits,
  type PreparedInputs,
} from './jobs/job-io.ts';
import { JobQueue, type CancelOutcome, type JobRecord, type SubmitOutcome } from './jobs/job-queue.ts';
import type { Logger } from './log.ts';
import type { RunnerMetrics } from './metrics.ts';

/** After the grace period, running jobs are asked to stop; a step that does not return within this is abandoned. */
const ABORT_WAIT_MS = 2_000;
/** Time left to deliver the final events before the process exits; what is not delivered stays in the outbox. */
const FLUSH_TIMEOUT_MS = 3_000;
/** Input URLs are short-lived signed links on the edge; a fetch that takes longer than this has failed. */
const INPUT_FETCH_TIMEOUT_MS = 30_000;
/** A weight file or an input image larger than this is refused before it is read (the edge caps images at 10 MB). */
const MAX_INPUT_BLOB_BYTES = 16 * 1024 * 1024;

const round = (ms: number) => Math.round(ms * 100) / 100;

export type JobTimings = {
  /** Reading and decoding inputs. */
  input_ms?: number;
  /** The executor call as the service sees it. */
  compute_ms?: number;
  /** The model compute alone, measured where it ran. */
  model_ms?: number;
  /** Building the result (PNG encoding, base64, hashes) and writing the final event to the outbox. */
  result_ms?: number;
};

type Tracked = { record: JobRecord; timings: JobTimings; finalReported: boolean; stepsCounted: number };

export type JobView = {
  job_id: string;
  attempt: number;
  kind: JobRequest['kind'];
  status: JobRecord['status'];
  progress: JobRecord['progress'] | null;
  error: RunnerError | null;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  timings: JobTimings;
};

export type RunnerServiceOptions = {
  config: RunnerConfig;
  executor: JobExecutor;
  outbox: Outbox;
  log: Logger;
  metrics: RunnerMetrics;
};

/** One session kind as /readyz and the startup log show it. */
export type SessionProviderReport = { requested: string; execution_provider?: string; precision?: string; cuda_unavailable?: string; error?: string };

export class RunnerService {
  readonly queue: JobQueue;
  private readonly sender: EventSender;
  private readonly tracked = new Map<string, Tracked>();
  /** Inputs decoded at submission, handed to the job's execution (and dropped with it). */
  private readonly prepared = new Map<string, PreparedInputs>();
  private readonly limits: InputLimits;
  private warmedUp = false;
  private warmupError: Error | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: RunnerServiceOptions) {
    const { config, metrics } = options;
    this.queue = new JobQueue({
      concurrency: config.concurrency,
      capacity: config.queueCapacity,
      retentionMs: config.jobRetentionMs,
      run: (record) => this.run(record),
    });
    this.sender = new EventSender({
      outbox: options.outbox,
      secret: config.secret,
      log: options.log,
      metrics,
      retryMinMs: config.eventRetryMinMs,
      retryMaxMs: config.eventRetryMaxMs,
      timeoutMs: config.eventTimeoutMs,
      onAck: (entry, ack) => this.onAck(entry, ack.cancel),
    });
    this.limits = { maxBytes: MAX_INPUT_BLOB_BYTES, timeoutMs: INPUT_FETCH_TIMEOUT_MS, maxImagePixels: config.maxImagePixels };
    metrics.queueCapacity.set(config.queueCapacity);
  }

  /** Starts event delivery (replaying the outbox) and loads the models in the background. */
  start(): void {
    this.sender.start();
    const { executor, log } = this.options;
    const startedAt = performance.now();
    executor.warmup().then(
      () => {
        this.warmedUp = true;
        log.info('models ready', { executor: executor.description, ms: Math.round(performance.now() - startedAt), session_providers: this.sessionProviders() });
        for (const warning of executor.warnings ?? []) log.warn(warning, { executor: executor.description });
      },
      (error: unknown) => {
        this.warmupError = error instanceof Error ? error : new Error(String(error));
        log.error('models failed to load', { executor: executor.description, error });
      },
    );
  }

  /**
   * The executor's check of a weight file against the loaded pack (executors/weight-check.ts), or why there is none
   * now: the models are not loaded yet (or failed to), or the executor cannot check files.
   */
  weightsChecker(): { check: (bytes: Uint8Array) => WeightsCheckResult } | { unavailable: 'not_ready' | 'unsupported' } {
    const { executor } = this.options;
    if (!this.warmedUp || this.warmupError || this.stopping) return { unavailable: 'not_ready' };
    if (!executor.checkWeights) return { unavailable: 'unsupported' };
    return { check: (bytes) => executor.checkWeights!(bytes) };
  }

  /** Why the runner should not get new jobs now; empty when ready. */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.warmupError) reasons.push(`models failed to load: ${this.warmupError.message}`);
    else if (!this.warmedUp) reasons.push('models loading');
    for (const [kind, status] of Object.entries(this.options.executor.sessionKinds?.() ?? {})) {
      // `cuda` never degrades: a kind that cannot open there takes the runner out of rotation, saying why.
      if (status.requested === 'cuda' && (status.error || status.executionProvider !== 'cuda')) {
        reasons.push(`session kind ${kind} cannot run on CUDA: ${status.error ?? `it runs on ${status.executionProvider}`}`);
      }
    }
    if (this.stopping) reasons.push('shutting down');
    if (this.queue.isFull) reasons.push('queue full');
    return reasons;
  }

  /**
   * Per session kind opened so far: the provider asked for and the one it runs on, or why it could not open (/readyz,
   * /metrics, the startup log).
   */
  sessionProviders(): Record<string, SessionProviderReport> {
    const kinds = this.options.executor.sessionKinds?.() ?? {};
    return Object.fromEntries(
      Object.entries(kinds).map(([kind, status]): [string, SessionProviderReport] => [
        kind,
        status.error
          ? { requested: status.requested, error: status.error }
          : {
              requested: status.requested,
              execution_provider: status.executionProvider ?? 'unknown',
              ...(status.precision ? { precision: status.precision } : {}),
              ...(status.cudaUnavailable ? { cuda_unavailable: status.cudaUnavailable } : {}),
            },
      ]),
    );
  }

  /** Validates inline inputs (throws `InvalidInputError`) and queues the job. */
  async submit(request: JobRequest): Promise<SubmitOutcome> {
    this.forgetExpired();
    const known = this.queue.get(request.job_id);
    const prepared = known ? undefined : await precheckJob(request, this.limits);
    const outcome = this.queue.submit(request, () => {
      if (prepared) this.prepared.set(request.job_id, prepared);
    });
    if (outcome.kind === 'accepted') {
      this.options.log.info('job accepted', { job_id: request.job_id, attempt: request.attempt, kind: request.kind });
    }
    this.updateQueueGauges();
    return outcome;
  }

  view(jobId: string): JobView | undefined {
    const record = this.queue.get(jobId);
    if (!record) return undefined;
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    return {
      job_id: record.id,
      attempt: record.attempt,
      kind: record.request.kind,
      status: record.status,
      progress: record.progress ?? null,
      error: record.error ?? null,
      queued_at: new Date(record.queuedAt).toISOString(),
      started_at: iso(record.startedAt),
      finished_at: iso(record.finishedAt),
      timings: this.tracked.get(jobId)?.timings ?? {},
    };
  }

  cancel(jobId: string): CancelOutcome {
    const { outcome, record } = this.queue.cancel(jobId);
    if (outcome === 'canceled' && record) {
      this.prepared.delete(jobId);
      // Never started: CONTRACT.md says the edge expects no event for it.
      this.queue.finish(record, 'canceled', { code: 'canceled', message: 'canceled before it started', retryable: false });
      this.options.log.info('job canceled before start', { job_id: jobId });
      this.updateQueueGauges();
    } else if (outcome === 'canceling') {
      this.options.log.info('job cancel requested', { job_id: jobId });
    }
    return outcome;
  }

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /**
   * Graceful stop (SIGTERM): refuse new jobs, hand queued ones back, let running ones finish within the grace
   * period, then abort them (reported failed and retryable, so the edge re-dispatches), flush the outbox.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    const { log, config, executor } = this.options;
    log.info('shutting down', { running: this.queue.running, queued: this.queue.depth, grace_ms: config.shutdownGraceMs });
    for (const record of this.queue.close()) {
      this.prepared.delete(record.id);
      await this.reportFailure(record, { code: 'shutdown', message: 'the runner stopped before the job started; dispatch it again', retryable: true });
    }
    this.updateQueueGauges();
    if (!(await this.queue.waitIdle(config.shutdownGraceMs))) {
      log.warn('grace period over, aborting running jobs', { running: this.queue.running });
      this.queue.abortRunning('shutdown');
      if (!(await this.queue.waitIdle(ABORT_WAIT_MS))) {
        for (const tracked of this.tracked.values()) {
          if (tracked.record.status === 'running') {
            await this.reportFailure(tracked.record, { code: 'shutdown', message: 'the runner stopped during a step; dispatch the job again', retryable: true });
          }
        }
      }
    }
    const flushed = await this.sender.flush(FLUSH_TIMEOUT_MS);
    if (!flushed) log.warn('edge unreachable, events kept in the outbox for the next start', { pending: this.options.outbox.size });
    await this.sender.stop();
    await executor.close().catch((error: unknown) => log.error('executor close failed', { error }));
    log.info('stopped', { outbox_pending: this.options.outbox.size });
  }

  private async run(record: JobRecord): Promise<void> {
    const tracked: Tracked = { record, timings: {}, finalReported: false, stepsCounted: 0 };
    this.tracked.set(record.id, tracked);
    const prepared = this.prepared.get(record.id);
    this.prepared.delete(record.id);
    const request = record.request;
    // `method`: the personalization method, or the sampler's scheduler for a generation.
    const labels = { kind: request.kind, method: request.kind === 'personalization' ? request.payload.method : request.payload.params.scheduler };
    const log = this.options.log.child({ job_id: record.id, kind: request.kind, method: labels.method });
    const { metrics, executor, config } = this.options;
    this.updateQueueGauges();
    metrics.jobWait.observe({ kind: request.kind }, ((record.startedAt ?? Date.now()) - record.queuedAt) / 1000);
    const startedAt = performance.now();
    log.info('job started', { attempt: record.attempt });
    // Not awaited: the model starts while the event is written; later events are chained after it, so the outbox
    // order (and the edge's) stays started → progress → final.
    let progressChain: Promise<void> = this.emit(record, { type: 'started' });
    let lastProgressAt = performance.now();
    let progressSent = false;
    const context: ExecutionContext = {
      signal: record.controller.signal,
      reportProgress: (step, totalSteps) => {
        record.progress = { step, total_steps: totalSteps };
        metrics.stepsTotal.inc(labels, Math.max(0, step - tracked.stepsCounted));
        tracked.stepsCounted = Math.max(tracked.stepsCounted, step);
        const now = performance.now();
        // The last step goes out only when no progress did (a job shorter than the interval): the final event implies
        // the rest, and the edge fills the progress in from the total it knows.
        if (step >= totalSteps ? progressSent : now - lastProgressAt < config.progressIntervalMs) return;
        lastProgressAt = now;
        progressSent = true;
        const progress = { type: 'progress' as const, step, total_steps: totalSteps };
        // Stamped when measured, not when written: the outbox write may wait behind the previous one.
        const occurredAt = performance.timeOrigin + now;
        progressChain = progressChain.then(() => this.emit(record, progress, { coalesceKey: `progress:${record.id}`, occurredAtMs: occurredAt }));
      },
    };

    try {
      let phaseAt = performance.now();
      const lap = () => {
        const elapsed = performance.now() - phaseAt;
        phaseAt = performance.now();
        return round(elapsed);
      };
      let result;
      if (request.kind === 'personalization') {
        const input = await personalizeInput(request, { ...this.limits, signal: record.controller.signal }, prepared);
        tracked.timings.input_ms = lap();
        throwIfAborted(context.signal);
        const output = await executor.personalize(input, context);
        tracked.timings.compute_ms = lap();
        tracked.timings.model_ms = round(output.computeMs ?? tracked.timings.compute_ms);
        result = personalizationResult(request, output);
      } else {
        const input = await generateInput(request, { ...this.limits, signal: record.controller.signal }, prepared);
        tracked.timings.input_ms = lap();
        throwIfAborted(context.signal);
        const output = await executor.generate(input, context);
        tracked.timings.compute_ms = lap();
        tracked.timings.model_ms = round(output.computeMs ?? tracked.timings.compute_ms);
        result = await generationResult(output);
      }
      await progressChain;
      if (tracked.finalReported) return; // Abandoned at shutdown and already handed back to the edge.
      tracked.finalReported = true;
      await this.emit(record, { type: 'succeeded', result }, { supersedes: `progress:${record.id}` });
      tracked.timings.result_ms = lap();
      this.queue.finish(record, 'succeeded');
      const seconds = (performance.now() - startedAt) / 1000;
      metrics.jobDuration.observe({ ...labels, outcome: 'succeeded' }, seconds);
      metrics.jobsFinished.inc({ ...labels, outcome: 'succeeded' });
      if (seconds > 0 && tracked.stepsCounted > 0) metrics.stepsPerSecond.set(labels, tracked.stepsCounted / seconds);
      log.info('job succeeded', { ms: Math.round(seconds * 1000), steps: tracked.stepsCounted, timings: tracked.timings });
    } catch (thrown) {
      await progressChain;
      const error = toRunnerError(thrown);
      const outcome = error.code === 'canceled' ? 'canceled' : 'failed';
      metrics.jobDuration.observe({ ...labels, outcome }, (performance.now() - startedAt) / 1000);
      metrics.jobsFinished.inc({ ...labels, outcome });
      if (outcome === 'failed') metrics.jobFailures.inc({ ...labels, code: error.code });
      const level = error.code === 'internal' ? 'error' : 'warn';
      log[level]('job ended without result', { error_code: error.code, retryable: error.retryable, reason: error.message, ...(error.code === 'internal' ? { error: thrown } : {}) });
      await this.reportFailure(record, error);
    } finally {
      this.updateQueueGauges();
    }
  }

  /** Sends the final `failed` event once per job and records the end. */
  private async reportFailure(record: JobRecord, error: RunnerError): Promise<void> {
    const tracked = this.tracked.get(record.id);
    if (tracked?.finalReported) return;
    if (tracked) tracked.finalReported = true;
    await this.emit(record, { type: 'failed', error }, { supersedes: `progress:${record.id}` });
    this.queue.finish(record, error.code === 'canceled' ? 'canceled' : 'failed', error);
  }

  private async emit(
    record: JobRecord,
    body: { type: 'started' } | { type: 'progress'; step: number; total_steps: number } | Pick<Extract<RunnerEvent, { type: 'succeeded' }>, 'type' | 'result'> | Pick<Extract<RunnerEvent, { type: 'failed' }>, 'type' | 'error'>,
    options: { coalesceKey?: string; supersedes?: string; occurredAtMs?: number } = {},
  ): Promise<void> {
    const event = {
      event_id: `evt_${crypto.randomUUID().replaceAll('-', '')}`,
      job_id: record.id,
      attempt: record.attempt,
      occurred_at: new Date(options.occurredAtMs ?? Date.now()).toISOString(),
      ...body,
    } as RunnerEvent;
    try {
      await this.options.outbox.add(record.request.events_url, event, {
        ...(options.coalesceKey ? { coalesceKey: options.coalesceKey } : {}),
        ...(options.supersedes ? { supersedes: options.supersedes } : {}),
        inFlight: this.sender.inFlightSeqs,
      });
      this.options.metrics.outboxPending.set(this.options.outbox.size);
      this.sender.notify();
    } catch (error) {
      // The outbox is on local disk; failing to write it (disk full) is an operator problem, loud in the logs. The
      // edge's lease then expires and it re-dispatches the job, so the job itself is not lost.
      this.options.log.error('could not write event to the outbox', { job_id: record.id, type: body.type, error });
    }
  }

  private forgetExpired(): void {
    for (const [id, tracked] of this.tracked) if (this.queue.get(id) !== tracked.record) this.tracked.delete(id);
  }

  private onAck(entry: OutboxEntry, cancel: boolean): void {
    if (!cancel) return;
    const record = this.queue.get(entry.event.job_id);
    if (record && (record.status === 'running' || record.status === 'queued')) {
      this.options.log.info('edge asked to stop the job', { job_id: record.id });
      this.cancel(record.id);
    }
  }

  private updateQueueGauges(): void {
    this.options.metrics.queueDepth.set(this.queue.depth);
    this.options.metrics.jobsRunning.set(this.queue.running);
  }
}
