import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import type { GenerationParams, PersonalizationPayload } from '../../contract/index.ts';
import { subjects } from './subjects.ts';
import { tenants } from './tenants.ts';

export const jobKind = pgEnum('job_kind', ['personalization', 'generation']);
/** queued → dispatched → running → succeeded | failed | canceled (docs/architecture.md); never backwards. */
export const jobStatus = pgEnum('job_status', ['queued', 'dispatched', 'running', 'succeeded', 'failed', 'canceled']);

/** A personalization's stored request: the runner payload without the images, which come from the subject. */
export type PersonalizationJobParams = Pick<PersonalizationPayload, 'method' | 'finetune' | 'outputs'>;
/** A generation's stored request: the sampling parameters and the base model the weights were trained on. */
export type GenerationJobParams = GenerationParams & { base_model_id: string };
/** Which one a row holds follows its `kind`; `'finetune' in params` tells them apart in TypeScript. */
export type JobParams = PersonalizationJobParams | GenerationJobParams;

export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    kind: jobKind('kind').notNull(),
    status: jobStatus('status').notNull().default('queued'),
    /** Personalizations: the subject; generations: the subject of the weights used. */
    subjectId: text('subject_id').references(() => subjects.id, { onDelete: 'set null' }),
    /** Generations only: the weights applied. Not a foreign key: weights rows reference jobs. */
    weightsId: text('weights_id'),
    method: text('method'),
    /** The public request as validated (finetune options or generation parameters). */
    params: jsonb('params').$type<JobParams>().notNull(),
    progressStep: integer('progress_step').notNull().default(0),
    progressTotal: integer('progress_total'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    /**
     * The runner process that claimed `claimed_attempt` (contract/claims.ts): one per attempt, so a job request
     * replayed to another runner does not run twice. A re-dispatch is a new attempt and can be claimed again.
     */
    claimedBy: text('claimed_by'),
    claimedAttempt: integer('claimed_attempt'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    dispatchedAt: timestamp('dispatched_at', { withTimezone: true }),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
    webhookUrl: text('webhook_url'),
    /** Null means every event. */
    webhookEvents: jsonb('webhook_events').$type<string[]>(),
  },
  (t) => [
    index('jobs_tenant_kind_id_idx').on(t.tenantId, t.kind, t.id),
    index('jobs_weights_idx').on(t.weightsId),
    // The cron scans only live jobs for expired leases.
    index('jobs_live_lease_idx')
      .on(t.leaseExpiresAt)
      .where(sql`${t.status} IN ('queued', 'dispatched', 'running')`),
    uniqueIndex('jobs_tenant_idempotency_idx')
      .on(t.tenantId, t.kind, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} IS NOT NULL`),
  ],
);

/** One row per runner event id: the dedupe ledger for `/internal/runner/events`. */
export const runnerEvents = pgTable(
  'runner_events',
  {
    eventId: text('event_id').primaryKey(),
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    attempt: integer('attempt').notNull(),
    outcome: text('outcome').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('runner_events_job_idx').on(t.jobId)],
);
