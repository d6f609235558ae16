// Personalizations: a job that turns a subject's photos into personalized weights (docs/method.md).
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { and, count, eq, inArray, isNull } from 'drizzle-orm';
import { jobs, subjectImages, subjects, weights } from '../../db/schema.ts';
import type { AppEnv } from '../app-types.ts';
import { FinetuneOptions, PersonalizationMethod, refineOutputFormats, WeightDtype, WeightFormat, weightFormatsOf } from '../../contract/index.ts';
import type { Database } from '../db/client.ts';
import { settingsOf } from '../env.ts';
import { presentPersonalization } from '../jobs/present.ts';
import { findTenantJob, listTenantJobs } from '../jobs/queries.ts';
import type { JobRow } from '../jobs/state.ts';
import { cancelJob, cancelOnRunner, leaseFrom } from '../jobs/transitions.ts';
import { conflict, notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { PageQuery } from '../lib/pagination.ts';
import { requireRole, tenantOf } from '../middleware/auth.ts';
import { JSON_BODY_LIMIT_BYTES, limitBody } from '../middleware/body-limit.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { afterCommit, idempotency } from '../middleware/idempotency.ts';
import { webhookEventsFilterSchema } from '../webhooks/events.ts';
import { checkWebhookTarget, targetPolicyFromEnv } from '../webhooks/target-policy.ts';
import { bearer, errorResponses, IdempotencyHeader, IdParam } from './common.ts';

/**
 * What a personalization returns unless asked otherwise: the native file and the method's exports (the two LoRA
 * files; for textual inversion, the kohya/A1111 embedding).
 */
export const DEFAULT_OUTPUTS = [
  { format: 'lidb', dtype: 'fp16' },
  { format: 'lidb', dtype: 'fp32' },
  { format: 'kohya', dtype: 'fp16' },
  { format: 'peft', dtype: 'fp16' },
] as const;

export function defaultOutputsOf(method: z.infer<typeof PersonalizationMethod>): Array<{ format: z.infer<typeof WeightFormat>; dtype: z.infer<typeof WeightDtype> }> {
  const formats: readonly string[] = weightFormatsOf(method);
  return DEFAULT_OUTPUTS.filter((output) => formats.includes(output.format)).map((output) => ({ ...output }));
}

export const WebhookFields = {
  webhook_url: z.string().url().max(2048).optional().openapi({ example: 'https://example.com/hooks/hdb' }),
  webhook_events: webhookEventsFilterSchema.optional().openapi({ description: 'Events to send; all when absent' }),
};

const CreatePersonalization = z
  .object({
    subject_id: z.string().min(1).max(64),
    method: PersonalizationMethod.default('hyperdreambooth'),
    finetune: FinetuneOptions.default(FinetuneOptions.parse({})),
    outputs: z
      .array(z.object({ format: WeightFormat, dtype: WeightDtype }).strict())
      .min(1)
      .max(6)
      .optional()
      .openapi({
        description:
          'Files to store, one per (format, dtype). Default: lidb fp16 and fp32, kohya fp16, peft fp16; textual-inversion writes lidb (native, with the learned embedding) and kohya (the kohya/A1111 embedding), not peft.',
      }),
    ...WebhookFields,
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.outputs) refineOutputFormats({ method: body.method, outputs: body.outputs }, ctx);
  })
  .openapi('CreatePersonalization');

const Progress = z.object({ step: z.number().int(), total_steps: z.number().int().nullable() });
const JobError = z.object({ code: z.string(), message: z.string() }).nullable();
export const JobCommonFields = {
  id: z.string(),
  status: z.enum(['queued', 'dispatched', 'running', 'succeeded', 'failed', 'canceled']),
  progress: Progress,
  attempts: z.number().int(),
  error: JobError,
  webhook_url: z.string().nullable(),
  webhook_events: z.array(z.string()).nullable(),
  created_at: z.string(),
  dispatched_at: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  timings: z.object({ queued_seconds: z.number().nullable(), run_seconds: z.number().nullable() }),
};

const PersonalizationSchema = z
  .object({
    object: z.literal('personalization'),
    ...JobCommonFields,
    subject_id: z.string().nullable(),
    method: z.string(),
    finetune: z.record(z.string(), z.unknown()),
    outputs: z.array(z.object({ format: z.string(), dtype: z.string() })),
    weights_id: z.string().nullable(),
  })
  .openapi('Personalization');

const PersonalizationList = z
  .object({ data: z.array(PersonalizationSchema), next_cursor: z.string().nullable() })
  .openapi('PersonalizationList');

const ListQuery = PageQuery.extend({
  subject_id: z.string().max(64).optional(),
  status: z.enum(['queued', 'dispatched', 'running', 'succeeded', 'failed', 'canceled']).optional(),
});

/** Validates a webhook target at request time, so a bad URL is a 422 now rather than a dead letter later. */
export function checkWebhookUrl(env: AppEnv['Bindings'], url: string | undefined): void {
  if (!url) return;
  const verdict = checkWebhookTarget(url, targetPolicyFromEnv(env));
  if (!verdict.ok) throw unprocessable('invalid_webhook_url', `webhook_url is not allowed: ${verdict.reason}`, { webhook_url: url });
}

async function weightsIdsOf(db: Database, jobIds: string[]): Promise<Map<string, string>> {
  if (jobIds.length === 0) return new Map();
  const rows = await db.select({ id: weights.id, jobId: weights.jobId }).from(weights).where(inArray(weights.jobId, jobIds));
  // Only personalization-sourced rows match a job id; imported weights have none.
  return new Map(rows.flatMap((r) => (r.jobId ? [[r.jobId, r.id] as const] : [])));
}

/** The tenant's personalization with the id of the weights it produced, in one query (404 when not the tenant's). */
async function findPersonalization(db: Database, tenantId: string, id: string): Promise<{ job: JobRow; weightsId: string | null }> {
  const [found] = await db
    .select({ job: jobs, weightsId: weights.id })
    .from(jobs)
    .leftJoin(weights, eq(weights.jobId, jobs.id))
    .where(and(eq(jobs.id, id), eq(jobs.tenantId, tenantId), eq(jobs.kind, 'personalization')));
  if (!found) throw notFound('personalization', id);
  return found;
}

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['personalizations'],
  summary: 'Start a personalization of a subject',
  security: bearer,
  middleware: [limitBody(JSON_BODY_LIMIT_BYTES), requireContentType('application/json')] as const,
  request: {
    headers: IdempotencyHeader,
    body: { required: true, content: { 'application/json': { schema: CreatePersonalization } } },
  },
  responses: {
    202: { description: 'Accepted; follow it with GET or the webhook', content: { 'application/json': { schema: PersonalizationSchema } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
  },
});

const get = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['personalizations'],
  summary: 'Get a personalization (status, progress, timings, error)',
  security: bearer,
  request: { params: IdParam('personalization', 'psn_0190b1f2a3c4d5e6f708192a3b4c') },
  responses: { 200: { description: 'The personalization', content: { 'application/json': { schema: PersonalizationSchema } } }, ...errorResponses(401, 403, 404) },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['personalizations'],
  summary: 'List personalizations, newest first',
  security: bearer,
  request: { query: ListQuery },
  responses: { 200: { description: 'A page', content: { 'application/json': { schema: PersonalizationList } } }, ...errorResponses(400, 401, 403, 422) },
});

const cancel = createRoute({
  method: 'post',
  path: '/{id}/cancel',
  tags: ['personalizations'],
  summary: 'Cancel a personalization that has not finished',
  security: bearer,
  request: { params: IdParam('personalization', 'psn_0190b1f2a3c4d5e6f708192a3b4c') },
  responses: {
    200: { description: 'Canceled (or already canceled)', content: { 'application/json': { schema: PersonalizationSchema } } },
    ...errorResponses(401, 403, 404, 409),
  },
});

export function personalizationsRouter() {
  const app = new OpenAPIHono<AppEnv>();
  app.use('*', requireRole('tenant'));
  app.post('/', idempotency());

  app.openapi(create, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const body = c.req.valid('json');
    checkWebhookUrl(c.env, body.webhook_url);
    const db = c.get('db');
    const [subject] = await db
      .select({ id: subjects.id })
      .from(subjects)
      .where(and(eq(subjects.id, body.subject_id), eq(subjects.tenantId, tenantId), isNull(subjects.deletedAt)));
    if (!subject) throw notFound('subject', body.subject_id);
    const [{ value: images } = { value: 0 }] = await db
      .select({ value: count() })
      .from(subjectImages)
      .where(and(eq(subjectImages.subjectId, subject.id), eq(subjectImages.status, 'stored')));
    if (images === 0) throw unprocessable('subject_has_no_images', `subject ${subject.id} has no images`);
    const idem = c.get('idempotency');
    const now = new Date();
    const settings = settingsOf(c.env);
    const [job] = await db
      .insert(jobs)
      .values({
        id: newId('personalization'),
        tenantId,
        kind: 'personalization',
        subjectId: subject.id,
        method: body.method,
        params: { method: body.method, finetune: body.finetune, outputs: body.outputs ?? defaultOutputsOf(body.method) },
        progressTotal: null,
        maxAttempts: settings.maxAttempts,
        leaseExpiresAt: leaseFrom(now, c.env),
        idempotencyKey: idem?.key ?? null,
        requestHash: idem?.requestHash ?? null,
        webhookUrl: body.webhook_url ?? null,
        webhookEvents: body.webhook_events ?? null,
      })
      .returning();
    if (!job) throw new Error('job insert returned nothing');
    // The job is accepted once its row commits; a lost queue message is re-sent by the cron (edge/jobs/cron.ts).
    await afterCommit(c, () => c.env.JOBS_QUEUE.send({ job_id: job.id }));
    return c.json(presentPersonalization(job, null), 202);
  });

  app.openapi(get, async (c) => {
    const { job, weightsId } = await findPersonalization(c.get('db'), tenantOf(c.get('principal')), c.req.valid('param').id);
    return c.json(presentPersonalization(job, weightsId), 200);
  });

  app.openapi(list, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { limit, cursor, subject_id, status } = c.req.valid('query');
    const db = c.get('db');
    const { items, nextCursor } = await listTenantJobs(db, tenantId, 'personalization', {
      limit,
      cursor,
      filters: [subject_id ? eq(jobs.subjectId, subject_id) : undefined, status ? eq(jobs.status, status) : undefined],
    });
    const ids = await weightsIdsOf(db, items.map((j) => j.id));
    return c.json({ data: items.map((j) => presentPersonalization(j, ids.get(j.id) ?? null)), next_cursor: nextCursor }, 200);
  });

  app.openapi(cancel, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { id } = c.req.valid('param');
    const db = c.get('db');
    await findTenantJob(db, tenantId, 'personalization', id);
    const result = await cancelJob(db, c.env, tenantId, id);
    if (!result) throw notFound('personalization', id);
    if (!result.canceled && result.job.status !== 'canceled') {
      throw conflict('already_finished', `personalization ${id} already ${result.job.status}`, { status: result.job.status });
    }
    if (result.wasOnRunner) c.executionCtx.waitUntil(cancelOnRunner(c.env, id));
    return c.json(presentPersonalization(result.job, null), 200);
  });

  return app;
}
