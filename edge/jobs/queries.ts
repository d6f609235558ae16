// A tenant's jobs of one kind, as the personalization and generation routes read them: one by id (404 when it is
// another tenant's or another kind's), or a page newest first.
import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import { jobs } from '../../db/schema.ts';
import type { Database } from '../db/client.ts';
import { notFound } from '../lib/errors.ts';
import { decodeCursor, page } from '../lib/pagination.ts';
import type { JobRow } from './state.ts';

export type JobKind = JobRow['kind'];

export async function findTenantJob(db: Database, tenantId: string, kind: JobKind, id: string): Promise<JobRow> {
  const [job] = await db.select().from(jobs).where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId), eq(jobs.kind, kind)));
  if (!job) throw notFound(kind, id);
  return job;
}

/** One page of the tenant's jobs of `kind` after `cursor`, narrowed by `filters` (undefined entries are ignored). */
export async function listTenantJobs(
  db: Database,
  tenantId: string,
  kind: JobKind,
  { limit, cursor, filters = [] }: { limit: number; cursor: string | undefined; filters?: (SQL | undefined)[] },
): Promise<{ items: JobRow[]; nextCursor: string | null }> {
  const before = decodeCursor(cursor);
  const rows = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.tenantId, tenantId), eq(jobs.kind, kind), before ? lt(jobs.id, before) : undefined, ...filters))
    .orderBy(desc(jobs.id))
    .limit(limit + 1);
  return page(rows, limit);
}
