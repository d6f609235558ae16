// Weights: the personalized model files a personalization produced or the owner imported (a native file made on
// their device); metadata, import, download by format and dtype, delete.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { and, desc, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import { weightFiles, weights } from '../../db/schema.ts';
import type { AppEnv } from '../app-types.ts';
import { sha256Hex, WeightDtype, WeightFormat } from '../../contract/index.ts';
import type { Database } from '../db/client.ts';
import { checkWeightsOnRunner } from '../jobs/weights-check.ts';
import { r2Keys } from '../jobs/storage.ts';
import { ApiError, notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { decodeCursor, page, PageQuery } from '../lib/pagination.ts';
import { requireRole, tenantOf } from '../middleware/auth.ts';
import { limitBody } from '../middleware/body-limit.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { idempotency, rememberAnswer } from '../middleware/idempotency.ts';
import { releaseConnection, releaseConnectionFirst } from '../middleware/database.ts';
import { commitRowsOrRemove, putObjects } from '../lib/staged-objects.ts';
import { bearer, errorResponses, IdempotencyHeader, IdParam } from './common.ts';

export type WeightsRow = typeof weights.$inferSelect;
export type WeightFileRow = typeof weightFiles.$inferSelect;

export const WeightsSchema = z
  .object({
    object: z.literal('weights'),
    id: z.string(),
    tenant_id: z.string().optional(),
    /** null for imported weights: no photo was uploaded, so they belong to no subject. */
    subject_id: z.string().nullable(),
    /** The personalization that made them; null for imported weights. */
    personalization_id: z.string().nullable(),
    source: z.enum(['personalization', 'import']).openapi({ description: '`import`: uploaded with POST /v1/weights (made on the owner\'s device); belongs to no subject' }),
    method: z.string(),
    base_model_id: z.string(),
    rank: z.number().int(),
    layers: z.array(z.string()),
    num_parameters: z.number().int(),
    total_bytes: z.number().int(),
    files: z.array(z.object({ format: z.string(), dtype: z.string(), byte_size: z.number().int(), sha256: z.string() })),
    created_at: z.string(),
  })
  .openapi('Weights');

const WeightsList = z.object({ data: z.array(WeightsSchema), next_cursor: z.string().nullable() }).openapi('WeightsList');

/** What the API shows of a file. */
export type WeightFileFacts = Pick<WeightFileRow, 'weightsId' | 'format' | 'dtype' | 'byteSize' | 'sha256'>;

export function presentWeights(row: WeightsRow, files: readonly WeightFileFacts[], options: { withTenant?: boolean } = {}) {
  return {
    object: 'weights' as const,
    id: row.id,
    ...(options.withTenant ? { tenant_id: row.tenantId } : {}),
    subject_id: row.subjectId,
    personalization_id: row.jobId,
    source: row.source,
    method: row.method,
    base_model_id: row.baseModelId,
    rank: row.rank,
    layers: row.layers,
    num_parameters: row.numParameters,
    total_bytes: row.totalBytes,
    files: files
      .filter((f) => f.weightsId === row.id)
      .map((f) => ({ format: f.format, dtype: f.dtype, byte_size: f.byteSize, sha256: f.sha256 })),
    created_at: row.createdAt.toISOString(),
  };
}

export async function filesOf(db: Database, weightsIds: string[]): Promise<WeightFileRow[]> {
  if (weightsIds.length === 0) return [];
  return db.select().from(weightFiles).where(inArray(weightFiles.weightsId, weightsIds));
}

/**
 * The files of each weights row as a JSON array in the row itself, so a page of weights is one query. Shares its
 * shape with WeightFileFacts; bigint sizes arrive as JSON numbers.
 */
const filesJson = sql<{ format: string; dtype: string; byte_size: number; sha256: string }[] | string>`coalesce((
  select json_agg(json_build_object('format', ${weightFiles.format}, 'dtype', ${weightFiles.dtype}, 'byte_size', ${weightFiles.byteSize}, 'sha256', ${weightFiles.sha256}))
  from ${weightFiles} where ${weightFiles.weightsId} = ${weights.id}), '[]'::json)`;

function filesFromJson(weightsId: string, value: { format: string; dtype: string; byte_size: number; sha256: string }[] | string): WeightFileFacts[] {
  const files = typeof value === 'string' ? (JSON.parse(value) as Exclude<typeof value, string>) : value;
  return files.map((f) => ({ weightsId, format: f.format, dtype: f.dtype, byteSize: Number(f.byte_size), sha256: f.sha256 }));
}

export async function findWeights(db: Database, tenantId: string, id: string): Promise<WeightsRow> {
  const [row] = await db
    .select()
    .from(weights)
    .where(and(eq(weights.id, id), eq(weights.tenantId, tenantId), isNull(weights.deletedAt)));
  if (!row) throw notFound('weights', id);
  return row;
}

const params = IdParam('weights', 'wts_0190b1f2a3c4d5e6f708192a3b4c');

/**
 * An imported file is one native (`lidb`) file: SD 1.5's largest, LiDB with a rank-4 LoRA relax term, is 2.98 MB at
 * fp16 and 5.96 MB at fp32 (gpu-runner/personalize/weights/FORMAT.md); the limit leaves room for higher relax ranks.
 */
export const WEIGHTS_IMPORT_MAX_BYTES = 16 * 1024 * 1024;
/** Multipart framing around the one file. */
const IMPORT_BODY_LIMIT = WEIGHTS_IMPORT_MAX_BYTES + 64 * 1024;

const ImportForm = z.object({
  file: z.instanceof(File).openapi({
    type: 'string',
    format: 'binary',
    description: 'A native weight file (`.safetensors`, format `hyperdreambooth.personalized-weights`) made for the base model this server serves',
  }),
});

const importWeights = createRoute({
  method: 'post',
  path: '/',
  tags: ['weights'],
  summary: 'Import a native weight file made elsewhere (e.g. on the owner\'s device); it belongs to no subject',
  security: bearer,
  middleware: [limitBody(IMPORT_BODY_LIMIT), requireContentType('multipart/form-data')] as const,
  request: {
    headers: IdempotencyHeader,
    body: { required: true, content: { 'multipart/form-data': { schema: ImportForm } } },
  },
  responses: {
    201: { description: 'Imported: the weights as GET /v1/weights/{id} shows them', content: { 'application/json': { schema: WeightsSchema } } },
    ...errorResponses(400, 401, 403, 409, 413, 415, 422, 503),
  },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['weights'],
  summary: 'List weights, newest first',
  security: bearer,
  request: { query: PageQuery.extend({ subject_id: z.string().max(64).optional() }) },
  responses: { 200: { description: 'A page', content: { 'application/json': { schema: WeightsList } } }, ...errorResponses(400, 401, 403, 422) },
});

const get = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['weights'],
  summary: 'Get weights metadata',
  security: bearer,
  request: { params },
  responses: { 200: { description: 'Metadata', content: { 'application/json': { schema: WeightsSchema } } }, ...errorResponses(401, 403, 404) },
});

const download = createRoute({
  method: 'get',
  path: '/{id}/download',
  tags: ['weights'],
  summary: 'Download a weights file (.safetensors): native (lidb), kohya LoRA or PEFT LoRA; for textual inversion, native or the kohya/A1111 embedding (kohya)',
  security: bearer,
  request: { params, query: z.object({ format: WeightFormat.default('lidb'), dtype: WeightDtype.default('fp16') }) },
  responses: {
    200: { description: 'The file', content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } },
    ...errorResponses(401, 403, 404, 422),
  },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['weights'],
  summary: 'Delete weights and their files',
  security: bearer,
  request: { params },
  responses: { 204: { description: 'Deleted' }, ...errorResponses(401, 403, 404) },
});

export function weightsRouter() {
  const app = new OpenAPIHono<AppEnv>();
  app.use('*', requireRole('tenant'));
  // Reading the file, the runner's check and the R2 write need no database connection: give auth's back first.
  app.post('/', releaseConnectionFirst(), idempotency({ transaction: 'handler' }));

  app.openapi(importWeights, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { file } = c.req.valid('form');
    if (file.size > WEIGHTS_IMPORT_MAX_BYTES) {
      throw new ApiError(413, 'weights_too_large', `the file is ${file.size} bytes; the limit is ${WEIGHTS_IMPORT_MAX_BYTES}`, { max_bytes: WEIGHTS_IMPORT_MAX_BYTES });
    }
    if (file.size === 0) throw unprocessable('invalid_weights', 'the file is empty: send a native weight file');
    const bytes = new Uint8Array(await file.arrayBuffer());
    const sha256 = await sha256Hex(bytes);
    // Nothing is stored before the runner has read the file as a generation would.
    const figures = await checkWeightsOnRunner(c.env, bytes, sha256);
    const id = newId('weights');
    const stored = { weightsId: id, format: 'lidb' as const, dtype: figures.dtype, r2Key: r2Keys.weightFile(tenantId, id, 'lidb', figures.dtype), byteSize: bytes.byteLength, sha256 };
    // The same order as a photo upload (edge/lib/staged-objects.ts): the object first, with no connection held, then
    // its rows and the idempotent answer in one short transaction, or the object removed again.
    await putObjects(c.env.BUCKET, [{ key: stored.r2Key, bytes, contentType: 'application/octet-stream', sha256 }]);
    const body = await commitRowsOrRemove(c.get('db'), c.env.BUCKET, [stored.r2Key], {
      write: async (tx) => {
        const [row] = await tx
          .insert(weights)
          .values({
            id,
            tenantId,
            subjectId: null,
            jobId: null,
            source: 'import',
            method: figures.method,
            baseModelId: figures.base_model_id,
            rank: figures.rank,
            layers: figures.layers,
            numParameters: figures.num_parameters,
            totalBytes: stored.byteSize,
          })
          .returning();
        if (!row) throw new Error('weights insert returned nothing');
        await tx.insert(weightFiles).values(stored);
        const body = presentWeights(row, [stored]);
        await rememberAnswer(c, tx, 201, body);
        return body;
      },
      committedKeys: async () => {
        releaseConnection(c);
        const found = await c.get('db').select({ r2Key: weightFiles.r2Key }).from(weightFiles).where(eq(weightFiles.weightsId, id));
        return found.map((file) => file.r2Key);
      },
    });
    return c.json(body, 201);
  });

  app.openapi(list, async (c) => {
    const tenantId = tenantOf(c.get('principal'));
    const { limit, cursor, subject_id } = c.req.valid('query');
    const before = decodeCursor(cursor);
    const db = c.get('db');
    const rows = await db
      .select({ row: weights, files: filesJson })
      .from(weights)
      .where(
        and(
          eq(weights.tenantId, tenantId),
          isNull(weights.deletedAt),
          before ? lt(weights.id, before) : undefined,
          subject_id ? eq(weights.subjectId, subject_id) : undefined,
        ),
      )
      .orderBy(desc(weights.id))
      .limit(limit + 1);
    const { items, nextCursor } = page(rows.map(({ row, files }) => ({ id: row.id, row, files })), limit);
    return c.json({ data: items.map(({ row, files }) => presentWeights(row, filesFromJson(row.id, files))), next_cursor: nextCursor }, 200);
  });

  app.openapi(get, async (c) => {
    const db = c.get('db');
    const row = await findWeights(db, tenantOf(c.get('principal')), c.req.valid('param').id);
    return c.json(presentWeights(row, await filesOf(db, [row.id])), 200);
  });

  app.openapi(download, async (c) => {
    const db = c.get('db');
    const row = await findWeights(db, tenantOf(c.get('principal')), c.req.valid('param').id);
    const { format, dtype } = c.req.valid('query');
    const [file] = await db
      .select()
      .from(weightFiles)
      .where(and(eq(weightFiles.weightsId, row.id), eq(weightFiles.format, format), eq(weightFiles.dtype, dtype)));
    if (!file) throw notFound(`${format}/${dtype} file of weights`, row.id);
    const object = await c.env.BUCKET.get(file.r2Key);
    if (!object) throw notFound(`${format}/${dtype} file of weights`, row.id);
    return c.body(object.body, 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(file.byteSize),
      'content-disposition': `attachment; filename="${row.id}-${format}-${dtype}.safetensors"`,
      'x-content-sha256': file.sha256,
    });
  });

  app.openapi(remove, async (c) => {
    const db = c.get('db');
    const row = await findWeights(db, tenantOf(c.get('principal')), c.req.valid('param').id);
    const files = await filesOf(db, [row.id]);
    await db.update(weights).set({ deletedAt: new Date() }).where(eq(weights.id, row.id));
    if (files.length) await c.env.BUCKET.delete(files.map((f) => f.r2Key));
    await db.delete(weightFiles).where(eq(weightFiles.weightsId, row.id));
    return c.body(null, 204);
  });

  return app;
}
