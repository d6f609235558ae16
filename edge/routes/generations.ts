// Generations: images from personalized weights; images are served from R2 to their owner only.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { and, eq, inArray } from 'drizzle-orm';
import { generationImages, jobs } from '../../db/schema.ts';
import type { AppEnv } from '../app-types.ts';
import { GenerationParams } from '../../contract/index.ts';
import type { Database } from '../db/client.ts';
import { settingsOf } from '../env.ts';
import { presentGeneration } from '../jobs/present.ts';
import { findTenantJob, listTenantJobs } from '../jobs/queries.ts';
import { leaseFrom } from '../jobs/transitions.ts';
import { notFound } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { PageQuery } from '../lib/pagination.ts';
import { requireRole, tenantOf } from '../middleware/auth.ts';
import { JSON_BODY_LIMIT_BYTES, limitBody } from '../middleware/body-limit.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { afterCommit, idempotency } from '../middleware/idempotency.ts';
import { bearer, errorResponses, IdempotencyHeader, IdParam } from './common.ts';
import { checkWebhookUrl, JobCommonFields, WebhookFields } from './personalizations.ts';
import { findWeights } from './weights.ts';

const CreateGeneration = GenerationParams.extend({ weights_id: z.string().min(1).max(64), ...WebhookFields }).strict().openapi('CreateGeneration');

const GenerationSchema = z
  .object({
    object: z.literal('generation'),
    ...JobCommonFields,
    weights_id: z.string().nullable(),
    params: z.record(z.string(), z.unknown()),
    images: z.array(
      z.object({
        index: z.number().int(),
        url: z.string(),
        content_type: z.string(),
        width: z.number().int(),
        height: z.number().int(),
        seed: z.number().int(),
        byte_size: z.number().int(),
        sha256: z.string(),
      }),
    ),
  })
  .openapi('Generation');

const GenerationList = z.object({ data: z.array(GenerationSchema), next_cursor: z.string().nullable() }).openapi('GenerationList');

async function imagesOf(db: Database, jobIds: string[]) {
  if (jobIds.length === 0) return [];
  return db.select().from(generationImages).where(inArray(generationImages.jobId, jobIds));
}

const params = IdParam('generation', 'gen_0190b1f2a3c4d5e6f708192a3b4c');

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['generations'],
  summary: 'Generate images with personalized weights',
  security: bearer,
  middleware: [limitBody(JSON_BODY_LIMIT_BYTES), requireContentType('application/json')] as const,
  request: { headers: IdempotencyHeader, body: { required: true, content: { 'application/json': { schema: CreateGeneration } } } },
  responses: {
    202: { description: 'Accepted', content: { 'application/json': { schema: GenerationSchema } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422),
  },
});

const get = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['generations'],
  summary: 'Get a generation and its image URLs',
  security: bearer,
  request: { params },
  responses: { 200: { description: 'The generation', content: { 'application/json': { schema: GenerationSchema } } }, ...errorResponses(401, 403, 404) },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['generations'],
  summary: 'List generations, newest first',
  security: bearer,
  request: { query: PageQuery.extend({ weights_id: z.string().max(64).optional() }) },
  responses: { 200: { description: 'A page', content: { 'application/json': { schema: GenerationList } } }, ...errorResponses(400, 401, 403, 422) },
});

const image = createRoute({
  method: 'get',
  path: '/{id}/images/{index}',
  tags: ['generations'],
  summary: 'Download one generated image (PNG)',
  security: bearer,
  request: {
    params: z.object({
      id: z.string().openapi({ param: { name: 'id', in: 'path' } }),
      index: z.coerce.number().int().min(0).openapi({ param: { name: 'index', in: 'path' } }),
    }),
  },
  responses: {
    200: { description: 'PNG', content: { 'image/png': { schema: z.string().openapi({ format: 'binary' }) } } },
    ...errorResponses(401, 403, 404, 422),
  },
});

export function generationsRouter() {
  const app = new OpenAPIHono<AppEnv>();
  app.use('*', requireRole('tenant'));
  app.post('/', idempotency());

  app.openapi(create, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { weights_id, webhook_url, webhook_events, ...generation } = c.req.valid('json');
    checkWebhookUrl(c.env, webhook_url);
    const db = c.get('db');
    const weightsRow = await findWeights(db, tenantId, weights_id);
    const idem = c.get('idempotency');
    const settings = settingsOf(c.env);
    const [job] = await db
      .insert(jobs)
      .values({
        id: newId('generation'),
        tenantId,
        kind: 'generation',
        subjectId: weightsRow.subjectId,
        weightsId: weightsRow.id,
        method: weightsRow.method,
        params: { ...generation, base_model_id: weightsRow.baseModelId },
        progressTotal: null,
        maxAttempts: settings.maxAttempts,
        leaseExpiresAt: leaseFrom(new Date(), c.env),
        idempotencyKey: idem?.key ?? null,
        requestHash: idem?.requestHash ?? null,
        webhookUrl: webhook_url ?? null,
        webhookEvents: webhook_events ?? null,
      })
      .returning();
    if (!job) throw new Error('job insert returned nothing');
    // The job is accepted once its row commits; a lost queue message is re-sent by the cron (edge/jobs/cron.ts).
    await afterCommit(c, () => c.env.JOBS_QUEUE.send({ job_id: job.id }));
    return c.json(presentGeneration(job, [], settings.publicUrl), 202);
  });

  app.openapi(get, async (c) => {
    const db = c.get('db');
    const job = await findTenantJob(db, tenantOf(c.get('principal')), 'generation', c.req.valid('param').id);
    return c.json(presentGeneration(job, await imagesOf(db, [job.id]), settingsOf(c.env).publicUrl), 200);
  });

  app.openapi(list, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { limit, cursor, weights_id } = c.req.valid('query');
    const db = c.get('db');
    const { items, nextCursor } = await listTenantJobs(db, tenantId, 'generation', {
      limit,
      cursor,
      filters: [weights_id ? eq(jobs.weightsId, weights_id) : undefined],
    });
    const images = await imagesOf(db, items.map((j) => j.id));
    const publicUrl = settingsOf(c.env).publicUrl;
    return c.json(
      { data: items.map((j) => presentGeneration(j, images.filter((i) => i.jobId === j.id), publicUrl)), next_cursor: nextCursor },
      200,
    );
  });

  app.openapi(image, async (c) => {
    const db = c.get('db');
    const { id, index } = c.req.valid('param');
    const job = await findTenantJob(db, tenantOf(c.get('principal')), 'generation', id);
    const [row] = await db.select().from(generationImages).where(and(eq(generationImages.jobId, job.id), eq(generationImages.index, index)));
    if (!row) throw notFound(`image ${index} of generation`, id);
    const object = await c.env.BUCKET.get(row.r2Key);
    if (!object) throw notFound(`image ${index} of generation`, id);
    return c.body(object.body, 200, { 'content-type': 'image/png', 'content-length': String(row.byteSize), 'cache-control': 'private, max-age=86400' });
  });

  return app;
}
