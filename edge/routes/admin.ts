// Admin: tenants (create, list, delete with everything they own), API keys (create shows the key once, revoke), the stored-weights query across tenants, and the
// re-seal of webhook secrets (edge/webhooks/README.md, "Sealed at rest").
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { and, count, desc, eq, gte, isNull, lt, lte, sum, type SQL } from 'drizzle-orm';
import { apiKeys, tenants, weights } from '../../db/schema.ts';
import type { AppEnv } from '../app-types.ts';
import { PersonalizationMethod } from '../../contract/index.ts';
import type { Database } from '../db/client.ts';
import { apiKeyCache } from '../lib/api-key-cache.ts';
import { createApiKey } from '../lib/api-keys.ts';
import { eraseTenant } from '../lib/erasure.ts';
import { notFound } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { decodeCursor, page, PageQuery } from '../lib/pagination.ts';
import { requireRole } from '../middleware/auth.ts';
import { JSON_BODY_LIMIT_BYTES, limitBody } from '../middleware/body-limit.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { bearer, errorResponses, iso } from './common.ts';
import { resealWebhookSecrets, webhookKeyringFromEnv } from '../webhooks/secrets-store.ts';
import { filesOf, presentWeights, WeightsSchema } from './weights.ts';

const TenantSchema = z.object({ object: z.literal('tenant'), id: z.string(), name: z.string(), created_at: z.string() }).openapi('Tenant');
const TenantList = z.object({ data: z.array(TenantSchema), next_cursor: z.string().nullable() }).openapi('TenantList');

const ApiKeySchema = z
  .object({
    object: z.literal('api_key'),
    id: z.string(),
    tenant_id: z.string().nullable(),
    role: z.enum(['tenant', 'admin']),
    name: z.string(),
    display_prefix: z.string().openapi({ example: 'hdb_live_Ab3x' }),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
  })
  .openapi('ApiKey');
const CreatedApiKey = ApiKeySchema.extend({ key: z.string().openapi({ description: 'Shown once; store it now' }) }).openapi('CreatedApiKey');
const ApiKeyList = z.object({ data: z.array(ApiKeySchema) }).openapi('ApiKeyList');

const CreateTenant = z.object({ name: z.string().min(1).max(200) }).strict().openapi('CreateTenant');
const CreateKey = z
  .object({ name: z.string().max(200).default(''), role: z.enum(['tenant', 'admin']).default('tenant') })
  .strict()
  .openapi('CreateApiKey');

const WeightsQuery = PageQuery.extend({
  tenant_id: z.string().max(64).optional(),
  subject_id: z.string().max(64).optional(),
  method: PersonalizationMethod.optional(),
  min_bytes: z.coerce.number().int().min(0).optional(),
  max_bytes: z.coerce.number().int().min(0).optional(),
  created_after: z.iso.datetime().optional(),
  created_before: z.iso.datetime().optional(),
  include_deleted: z.enum(['true', 'false']).default('false'),
});
const AdminWeightsPage = z
  .object({
    data: z.array(WeightsSchema),
    next_cursor: z.string().nullable(),
    totals: z.object({ count: z.number().int(), total_bytes: z.number().int() }).openapi({ description: 'Over every row matching the filters, not only this page' }),
  })
  .openapi('AdminWeightsPage');

const ResealReport = z
  .object({
    resealed: z.number().int().openapi({ description: 'Rows sealed or moved to the active key by this call' }),
    remaining: z.number().int().openapi({ description: 'Rows still in clear or under an older key; call again until 0' }),
    missing_keys: z.record(z.string(), z.number().int()).openapi({ description: 'Rows sealed under keys absent from WEBHOOK_SEALING_KEYS, by key id; left untouched' }),
  })
  .openapi('WebhookSecretsResealReport');

type KeyRow = typeof apiKeys.$inferSelect;
type TenantRow = typeof tenants.$inferSelect;

const presentTenant = (t: TenantRow) => ({ object: 'tenant' as const, id: t.id, name: t.name, created_at: t.createdAt.toISOString() });
const presentKey = (k: KeyRow) => ({
  object: 'api_key' as const,
  id: k.id,
  tenant_id: k.tenantId,
  role: k.role,
  name: k.name,
  display_prefix: k.displayPrefix,
  created_at: k.createdAt.toISOString(),
  revoked_at: iso(k.revokedAt),
  last_used_at: iso(k.lastUsedAt),
});

export { createApiKey };

async function findTenant(db: Database, id: string): Promise<TenantRow> {
  const [row] = await db.select().from(tenants).where(eq(tenants.id, id));
  if (!row) throw notFound('tenant', id);
  return row;
}

const tenantParam = z.object({ id: z.string().max(64).openapi({ param: { name: 'id', in: 'path' } }) });
const json = [limitBody(JSON_BODY_LIMIT_BYTES), requireContentType('application/json')] as const;

const routes = {
  createTenant: createRoute({
    method: 'post',
    path: '/tenants',
    tags: ['admin'],
    summary: 'Create a tenant',
    security: bearer,
    middleware: [...json],
    request: { body: { required: true, content: { 'application/json': { schema: CreateTenant } } } },
    responses: { 201: { description: 'Created', content: { 'application/json': { schema: TenantSchema } } }, ...errorResponses(400, 401, 403, 413, 415, 422) },
  }),
  listTenants: createRoute({
    method: 'get',
    path: '/tenants',
    tags: ['admin'],
    summary: 'List tenants, newest first',
    security: bearer,
    request: { query: PageQuery },
    responses: { 200: { description: 'A page', content: { 'application/json': { schema: TenantList } } }, ...errorResponses(400, 401, 403, 422) },
  }),
  getTenant: createRoute({
    method: 'get',
    path: '/tenants/{id}',
    tags: ['admin'],
    summary: 'Get a tenant',
    security: bearer,
    request: { params: tenantParam },
    responses: { 200: { description: 'The tenant', content: { 'application/json': { schema: TenantSchema } } }, ...errorResponses(401, 403, 404) },
  }),
  deleteTenant: createRoute({
    method: 'delete',
    path: '/tenants/{id}',
    tags: ['admin'],
    summary: 'Delete a tenant and everything it owns: subjects, photos, jobs, weights, generated images, keys, webhooks',
    security: bearer,
    request: { params: tenantParam },
    responses: { 204: { description: 'Deleted, rows and stored files' }, ...errorResponses(401, 403, 404) },
  }),
  createKey: createRoute({
    method: 'post',
    path: '/tenants/{id}/keys',
    tags: ['admin'],
    summary: 'Create an API key for a tenant (the key is in this response only)',
    security: bearer,
    middleware: [...json],
    request: { params: tenantParam, body: { required: true, content: { 'application/json': { schema: CreateKey } } } },
    responses: { 201: { description: 'Created', content: { 'application/json': { schema: CreatedApiKey } } }, ...errorResponses(400, 401, 403, 404, 413, 415, 422) },
  }),
  listKeys: createRoute({
    method: 'get',
    path: '/tenants/{id}/keys',
    tags: ['admin'],
    summary: "List a tenant's API keys (never the keys themselves)",
    security: bearer,
    request: { params: tenantParam },
    responses: { 200: { description: 'Keys', content: { 'application/json': { schema: ApiKeyList } } }, ...errorResponses(401, 403, 404) },
  }),
  revokeKey: createRoute({
    method: 'post',
    path: '/keys/{id}/revoke',
    tags: ['admin'],
    summary: 'Revoke an API key (idempotent)',
    security: bearer,
    request: { params: z.object({ id: z.string().max(64).openapi({ param: { name: 'id', in: 'path' } }) }) },
    responses: { 200: { description: 'Revoked', content: { 'application/json': { schema: ApiKeySchema } } }, ...errorResponses(401, 403, 404) },
  }),
  queryWeights: createRoute({
    method: 'get',
    path: '/weights',
    tags: ['admin'],
    summary: 'Query stored weights across tenants (filters, cursor, totals)',
    security: bearer,
    request: { query: WeightsQuery },
    responses: { 200: { description: 'A page and totals', content: { 'application/json': { schema: AdminWeightsPage } } }, ...errorResponses(400, 401, 403, 422) },
  }),
  resealWebhookSecrets: createRoute({
    method: 'post',
    path: '/webhook-secrets/reseal',
    tags: ['admin'],
    summary: 'Seal clear webhook secrets and move sealed ones to the active key (one batch; the cron runs it too)',
    security: bearer,
    responses: { 200: { description: 'What moved and what is left', content: { 'application/json': { schema: ResealReport } } }, ...errorResponses(401, 403) },
  }),
};

export function adminRouter() {
  const app = new OpenAPIHono<AppEnv>();
  app.use('*', requireRole('admin'));

  app.openapi(routes.createTenant, async (c) => {
    const [row] = await c.get('db').insert(tenants).values({ id: newId('tenant'), name: c.req.valid('json').name }).returning();
    if (!row) throw new Error('tenant insert returned nothing');
    return c.json(presentTenant(row), 201);
  });

  app.openapi(routes.listTenants, async (c) => {
    const { limit, cursor } = c.req.valid('query');
    const before = decodeCursor(cursor);
    const rows = await c.get('db').select().from(tenants).where(before ? lt(tenants.id, before) : undefined).orderBy(desc(tenants.id)).limit(limit + 1);
    const { items, nextCursor } = page(rows, limit);
    return c.json({ data: items.map(presentTenant), next_cursor: nextCursor }, 200);
  });

  app.openapi(routes.getTenant, async (c) => c.json(presentTenant(await findTenant(c.get('db'), c.req.valid('param').id)), 200));

  app.openapi(routes.deleteTenant, async (c) => {
    await eraseTenant(c.get('db'), c.env, c.executionCtx, c.req.valid('param').id);
    return c.body(null, 204);
  });

  app.openapi(routes.createKey, async (c) => {
    const db = c.get('db');
    const tenant = await findTenant(db, c.req.valid('param').id);
    const { name, role } = c.req.valid('json');
    const { row, key } = await createApiKey(db, { tenantId: tenant.id, role, name });
    return c.json({ ...presentKey(row), key }, 201);
  });

  app.openapi(routes.listKeys, async (c) => {
    const db = c.get('db');
    const tenant = await findTenant(db, c.req.valid('param').id);
    const rows = await db.select().from(apiKeys).where(eq(apiKeys.tenantId, tenant.id)).orderBy(desc(apiKeys.id));
    return c.json({ data: rows.map(presentKey) }, 200);
  });

  app.openapi(routes.revokeKey, async (c) => {
    const db = c.get('db');
    const { id } = c.req.valid('param');
    const [row] = await db.update(apiKeys).set({ revokedAt: new Date() }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt))).returning();
    // Refused at once here; other isolates refuse it when their cache entry expires (edge/lib/api-key-cache.ts).
    apiKeyCache.forgetKey(id);
    const current = row ?? (await db.select().from(apiKeys).where(eq(apiKeys.id, id)))[0];
    if (!current) throw notFound('API key', id);
    return c.json(presentKey(current), 200);
  });

  app.openapi(routes.queryWeights, async (c) => {
    const q = c.req.valid('query');
    const before = decodeCursor(q.cursor);
    const filters: (SQL | undefined)[] = [
      q.include_deleted === 'true' ? undefined : isNull(weights.deletedAt),
      q.tenant_id ? eq(weights.tenantId, q.tenant_id) : undefined,
      q.subject_id ? eq(weights.subjectId, q.subject_id) : undefined,
      q.method ? eq(weights.method, q.method) : undefined,
      q.min_bytes !== undefined ? gte(weights.totalBytes, q.min_bytes) : undefined,
      q.max_bytes !== undefined ? lte(weights.totalBytes, q.max_bytes) : undefined,
      q.created_after ? gte(weights.createdAt, new Date(q.created_after)) : undefined,
      q.created_before ? lt(weights.createdAt, new Date(q.created_before)) : undefined,
    ];
    const db = c.get('db');
    const [rows, [totals]] = await Promise.all([
      db
        .select()
        .from(weights)
        .where(and(...filters, before ? lt(weights.id, before) : undefined))
        .orderBy(desc(weights.id))
        .limit(q.limit + 1),
      db.select({ count: count(), bytes: sum(weights.totalBytes) }).from(weights).where(and(...filters)),
    ]);
    const { items, nextCursor } = page(rows, q.limit);
    const files = await filesOf(db, items.map((w) => w.id));
    return c.json(
      {
        data: items.map((w) => presentWeights(w, files, { withTenant: true })),
        next_cursor: nextCursor,
        totals: { count: totals?.count ?? 0, total_bytes: Number(totals?.bytes ?? 0) },
      },
      200,
    );
  });

  app.openapi(routes.resealWebhookSecrets, async (c) => {
    const report = await resealWebhookSecrets(c.get('db'), await webhookKeyringFromEnv(c.env));
    return c.json({ resealed: report.resealed, remaining: report.remaining, missing_keys: report.missingKeys }, 200);
  });

  return app;
}
