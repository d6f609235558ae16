import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { jobs } from './jobs.ts';
import { subjects } from './subjects.ts';
import { tenants } from './tenants.ts';

/**
 * Where a weights row came from: a server personalization (its job made it), or an import of a file the owner made
 * elsewhere, e.g. on their own device (POST /v1/weights, docs/api.md "Importing weights"): no job, no subject.
 */
export const weightsSource = pgEnum('weights_source', ['personalization', 'import']);

export const weights = pgTable(
  'weights',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    subjectId: text('subject_id').references(() => subjects.id, { onDelete: 'set null' }),
    /** The personalization that made them; null for imported weights. */
    jobId: text('job_id').references(() => jobs.id, { onDelete: 'cascade' }),
    source: weightsSource('source').notNull().default('personalization'),
    method: text('method').notNull(),
    baseModelId: text('base_model_id').notNull(),
    rank: integer('rank').notNull(),
    layers: jsonb('layers').$type<string[]>().notNull(),
    numParameters: integer('num_parameters').notNull(),
    /** Sum of the stored files' sizes; the admin query filters on it. */
    totalBytes: bigint('total_bytes', { mode: 'number' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [
    index('weights_tenant_id_idx').on(t.tenantId, t.id),
    uniqueIndex('weights_job_idx').on(t.jobId),
    index('weights_subject_idx').on(t.subjectId),
    // Admin query across tenants: newest first, filtered by method / date / size.
    index('weights_created_idx').on(t.createdAt, t.id),
    index('weights_method_idx').on(t.method, t.id),
    check('weights_personalization_job_check', sql`${t.source} <> 'personalization' OR ${t.jobId} IS NOT NULL`),
  ],
);

/** One stored file per (format, dtype) of a weights row. */
export const weightFiles = pgTable(
  'weight_files',
  {
    weightsId: text('weights_id')
      .notNull()
      .references(() => weights.id, { onDelete: 'cascade' }),
    format: text('format').notNull(),
    dtype: text('dtype').notNull(),
    r2Key: text('r2_key').notNull(),
    byteSize: bigint('byte_size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
  },
  (t) => [uniqueIndex('weight_files_pk_idx').on(t.weightsId, t.format, t.dtype)],
);
