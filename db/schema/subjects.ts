import { bigint, index, integer, jsonb, pgEnum, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import type { FaceBox } from '../../contract/index.ts';
import { tenants } from './tenants.ts';

export const subjectImageStatus = pgEnum('subject_image_status', ['pending', 'stored']);

export const subjects = pgTable(
  'subjects',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull().default(''),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  // Ids sort by creation time, so (tenant, id) serves both lookups and cursor pagination.
  (t) => [index('subjects_tenant_id_idx').on(t.tenantId, t.id)],
);

export const subjectImages = pgTable(
  'subject_images',
  {
    id: text('id').primaryKey(),
    subjectId: text('subject_id')
      .notNull()
      .references(() => subjects.id, { onDelete: 'cascade' }),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /**
     * Uploads write the object first and insert the row `stored` (edge/lib/staged-objects.ts). `pending` marks rows of
     * the earlier order (row, then R2): the cron deletes those that never completed, with their objects.
     */
    status: subjectImageStatus('status').notNull().default('pending'),
    r2Key: text('r2_key').notNull(),
    contentType: text('content_type').notNull(),
    byteSize: bigint('byte_size', { mode: 'number' }).notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    sha256: text('sha256').notNull(),
    /** Where the face is, as the owner gave it (pixels of the upright image); null: the runner takes the centre. */
    faceBox: jsonb('face_box').$type<FaceBox>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('subject_images_subject_idx').on(t.subjectId, t.id),
    index('subject_images_status_created_idx').on(t.status, t.createdAt),
  ],
);
