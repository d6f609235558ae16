// Prometheus metrics of one runner (docs/architecture.md: queue depth, job durations by kind and method, steps per
// second, failures). One registry per service instance, so several runners in one test process do not share counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Tiny-pack jobs take ~0.1–10 s on CPU; full SD 1.5 personalization ~10–60 s on a GPU, DreamBooth baselines minutes. */
const JOB_DURATION_BUCKETS_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200];

export type JobLabels = { kind: string; method: string };

/** What the session gauges read per kind: the part of the service's report they show. */
type SessionGaugeReport = { execution_provider?: string; precision?: string; error?: string };

export class RunnerMetrics {
  readonly registry = new Registry();
  readonly queueDepth = new Gauge({ name: 'runner_queue_depth', help: 'Jobs waiting to run.', registers: [this.registry] });
  readonly jobsRunning = new Gauge({ name: 'runner_jobs_running', help: 'Jobs running now.', registers: [this.registry] });
  readonly queueCapacity = new Gauge({
    name: 'runner_queue_capacity',
    help: 'Jobs that may wait before the runner answers 503.',
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: 'runner_job_duration_seconds',
    help: 'Wall time of a job from start of execution to its final event, by kind, method and outcome.',
    labelNames: ['kind', 'method', 'outcome'],
    buckets: JOB_DURATION_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly jobWait = new Histogram({
    name: 'runner_job_queue_wait_seconds',
    help: 'Time a job waited in the queue before it started.',
    labelNames: ['kind'],
    buckets: JOB_DURATION_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly stepsTotal = new Counter({
    name: 'runner_steps_total',
    help: 'Model steps completed (finetune or denoising steps); rate() gives steps per second.',
    labelNames: ['kind', 'method'],
    registers: [this.registry],
  });
  readonly stepsPerSecond = new Gauge({
    name: 'runner_steps_per_second',
    help: 'Steps per second of the last finished job of this kind and method.',
    labelNames: ['kind', 'method'],
    registers: [this.registry],
  });
  readonly jobsFinished = new Counter({
    name: 'runner_jobs_finished_total',
    help: 'Jobs that ended, by kind, method and outcome (succeeded, failed, canceled).',
    labelNames: ['kind', 'method', 'outcome'],
    registers: [this.registry],
  });
  readonly jobFailures = new Counter({
    name: 'runner_job_failures_total',
    help: 'Failed jobs by kind, method and error code.',
    labelNames: ['kind', 'method', 'code'],
    registers: [this.registry],
  });
  readonly requestsRejected = new Counter({
    name: 'runner_requests_rejected_total',
    help: 'Requests refused before a job was queued, by reason.',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly outboxPending = new Gauge({
    name: 'runner_outbox_pending',
    help: 'Events written to the outbox and not yet acknowledged by the edge.',
    registers: [this.registry],
  });
  readonly eventDeliveryFailures = new Counter({
    name: 'runner_event_delivery_failures_total',
    help: 'Event deliveries that were not acknowledged (retried later), by reason.',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly eventsDeadLettered = new Counter({
    name: 'runner_events_dead_lettered_total',
    help: 'Events the edge refused permanently (4xx), kept on disk for inspection.',
    registers: [this.registry],
  });

  private sessionProviders: () => Record<string, SessionGaugeReport> = () => ({});
  readonly sessionProvider = new Gauge({
    name: 'runner_session_provider',
    help: 'The execution provider each session kind runs on (1 for the kind and its provider; "failed" where it could not open).',
    labelNames: ['kind', 'provider'],
    registers: [this.registry],
    collect: () => {
      this.sessionProvider.reset();
      for (const [kind, report] of Object.entries(this.sessionProviders())) {
        this.sessionProvider.set({ kind, provider: report.error ? 'failed' : (report.execution_provider ?? 'unknown') }, 1);
      }
    },
  });

  readonly sessionPrecision = new Gauge({
    name: 'runner_session_precision',
    help: 'The precision each session kind opened computes in (1 for the kind and its precision: fp16 or fp32).',
    labelNames: ['kind', 'precision'],
    registers: [this.registry],
    collect: () => {
      this.sessionPrecision.reset();
      for (const [kind, report] of Object.entries(this.sessionProviders())) {
        if (report.precision) this.sessionPrecision.set({ kind, precision: report.precision }, 1);
      }
    },
  });

  /** Where the session gauges read from at each scrape (the service's executor). */
  reportSessionProviders(read: () => Record<string, SessionGaugeReport>): void {
    this.sessionProviders = read;
  }

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'runner_' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
