// Tenant-facing webhook endpoints under /v1/webhooks: deliveries and dead letters (list, get, replay) and the signing
// secrets (read, rotate). Mounted at /webhooks in the app's /v1 API, behind authentication; every query is scoped by
// the key's tenant, so another tenant's delivery is a 404.
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { AppEnv } from '../app-types.ts';
import { ApiError, conflict, notFound } from '../lib/errors.ts';
import { bearer, errorResponses } from '../routes/common.ts';
import {
  getWebhookDelivery,
  InvalidCursorError,
  listWebhookDeliveries,
  presentDelivery,
  replayWebhookDelivery,
  type WebhookDeliveryState,
} from './deliveries-store.ts';
import { WEBHOOK_EVENT_TYPES } from './events.ts';
import type { WebhookQueue } from './queue-message.ts';
import {
  DEFAULT_ROTATION_OVERLAP_SECONDS,
  ensureWebhookSecrets,
  MAX_ROTATION_OVERLAP_SECONDS,
  rotateWebhookSecret,
  webhookKeyringFromEnv,
  type WebhookSecretRecord,
} from './secrets-store.ts';

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

const DeliverySchema = z
  .object({
    id: z.string().openapi({ description: 'Also the `webhook-id` header: identical on every attempt and replay', example: 'msg_2f1c…' }),
    event_type: z.enum(WEBHOOK_EVENT_TYPES),
    job_id: z.string().nullable(),
    url: z.string(),
    state: z.enum(['pending', 'delivered', 'dead']),
    attempts: z.number().int(),
    max_attempts: z.number().int(),
    last_status: z.number().int().nullable().openapi({ description: 'HTTP status of the last attempt; null without a response' }),
    last_error: z.string().nullable(),
    first_attempt_at: z.string().nullable(),
    last_attempt_at: z.string().nullable(),
    next_attempt_at: z.string().nullable(),
    delivered_at: z.string().nullable(),
    dead_at: z.string().nullable(),
    replay_count: z.number().int(),
    created_at: z.string(),
    payload: z.unknown().optional().openapi({ description: 'The signed body, on single-delivery reads' }),
  })
  .openapi('WebhookDelivery');

const DeliveryPageSchema = z
  .object({ data: z.array(DeliverySchema), next_cursor: z.string().nullable() })
  .openapi('WebhookDeliveryPage');

const pageQuery = {
  job_id: z.string().min(1).max(64).optional().openapi({ description: 'Only the deliveries of this personalization or generation' }),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().min(1).max(200).optional(),
};

const ListQuery = z.object({
  state: z.enum(['pending', 'delivered', 'dead']).optional(),
  ...pageQuery,
});
const DeadLetterQuery = z.object(pageQuery);

const DeliveryIdParam = z.object({
  id: z.string().min(1).max(64).openapi({ param: { name: 'id', in: 'path' }, example: 'msg_2f1c…' }),
});

const SecretSchema = z
  .object({
    id: z.string(),
    secret: z.string().openapi({ description: 'Standard Webhooks secret: `whsec_` + base64 key', example: 'whsec_…' }),
    created_at: z.string(),
    expires_at: z.string().nullable().openapi({ description: 'Set on a rotated-out secret: it signs until then' }),
  })
  .openapi('WebhookSecret');

const RotateBody = z.object({
  overlap_seconds: z
    .number()
    .int()
    .min(0)
    .max(MAX_ROTATION_OVERLAP_SECONDS)
    .default(DEFAULT_ROTATION_OVERLAP_SECONDS)
    .openapi({ description: 'How long the previous secrets keep signing (two signatures meanwhile); 0 revokes them now' }),
});

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const routes = {
  list: createRoute({
    method: 'get',
    path: '/deliveries',
    tags: ['webhooks'],
    summary: "The tenant's webhook deliveries, newest first",
    security: bearer,
    request: { query: ListQuery },
    responses: { 200: json(DeliveryPageSchema, 'A page of deliveries'), ...errorResponses(400, 401, 403, 422) },
  }),
  deadLetters: createRoute({
    method: 'get',
    path: '/dead-letters',
    tags: ['webhooks'],
    summary: 'Deliveries that exhausted their retries (or whose URL was refused), newest first',
    security: bearer,
    request: { query: DeadLetterQuery },
    responses: { 200: json(DeliveryPageSchema, 'A page of dead letters'), ...errorResponses(400, 401, 403, 422) },
  }),
  get: createRoute({
    method: 'get',
    path: '/deliveries/{id}',
    tags: ['webhooks'],
    summary: 'One delivery, with its payload',
    security: bearer,
    request: { params: DeliveryIdParam },
    responses: { 200: json(DeliverySchema, 'The delivery'), ...errorResponses(401, 403, 404) },
  }),
  replay: createRoute({
    method: 'post',
    path: '/deliveries/{id}/replay',
    tags: ['webhooks'],
    summary: 'Send a dead or delivered webhook again (same webhook-id, fresh retry schedule)',
    security: bearer,
    request: { params: DeliveryIdParam },
    responses: { 202: json(DeliverySchema, 'Replay scheduled'), ...errorResponses(401, 403, 404, 409) },
  }),
  secrets: createRoute({
    method: 'get',
    path: '/secrets',
    tags: ['webhooks'],
    summary: 'The live signing secrets, current first (created on first use)',
    security: bearer,
    responses: { 200: json(z.object({ data: z.array(SecretSchema) }), 'Live secrets'), ...errorResponses(401, 403) },
  }),
  rotate: createRoute({
    method: 'post',
    path: '/secrets/rotate',
    tags: ['webhooks'],
    summary: 'Start signing with a new secret; older ones keep signing for the overlap',
    security: bearer,
    request: { body: { content: { 'application/json': { schema: RotateBody } }, required: false } },
    responses: {
      201: json(z.object({ secret: SecretSchema, previous_expire_at: z.string() }), 'The new secret'),
      ...errorResponses(400, 401, 403, 422),
    },
  }),
};

function tenantId(c: Context<AppEnv>): string {
  const principal = c.get('principal');
  if (principal.role !== 'tenant' || !principal.tenantId) {
    throw new ApiError(403, 'forbidden', 'webhook endpoints need a key with the tenant role');
  }
  return principal.tenantId;
}

function presentSecret(record: WebhookSecretRecord) {
  return {
    id: record.id,
    secret: record.secret,
    created_at: record.createdAt.toISOString(),
    expires_at: record.expiresAt?.toISOString() ?? null,
  };
}

async function listPage(
  c: Context<AppEnv>,
  query: { states?: WebhookDeliveryState[]; job_id?: string | undefined; limit: number; cursor?: string | undefined },
) {
  try {
    const page = await listWebhookDeliveries(c.get('db'), tenantId(c), {
      ...(query.states ? { states: query.states } : {}),
      ...(query.job_id ? { jobId: query.job_id } : {}),
      limit: query.limit,
      ...(query.cursor ? { cursor: query.cursor } : {}),
    });
    return { data: page.rows.map((row) => presentDelivery(row, { withPayload: false })), next_cursor: page.nextCursor };
  } catch (error) {
    if (error instanceof InvalidCursorError) throw new ApiError(400, 'invalid_cursor', error.message);
    throw error;
  }
}

export interface WebhooksRouterOptions {
  /** The clock; tests inject one. */
  now?: () => Date;
}

export function webhooksRouter(options: WebhooksRouterOptions = {}) {
  const now = options.now ?? (() => new Date());
  const router = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw result.error;
    },
  });

  router.openapi(routes.list, async (c) => {
    const query = c.req.valid('query');
    return c.json(await listPage(c, { ...query, ...(query.state ? { states: [query.state] } : {}) }), 200);
  });

  router.openapi(routes.deadLetters, async (c) => c.json(await listPage(c, { ...c.req.valid('query'), states: ['dead'] }), 200));

  router.openapi(routes.get, async (c) => {
    const { id } = c.req.valid('param');
    const row = await getWebhookDelivery(c.get('db'), tenantId(c), id);
    if (!row) throw notFound('webhook delivery', id);
    return c.json(presentDelivery(row, { withPayload: true }), 200);
  });

  router.openapi(routes.replay, async (c) => {
    const { id } = c.req.valid('param');
    const queue: WebhookQueue = c.env.WEBHOOKS_QUEUE;
    const result = await replayWebhookDelivery({ db: c.get('db'), queue, now }, tenantId(c), id);
    if (result.kind === 'not_found') throw notFound('webhook delivery', id);
    if (result.kind === 'pending') throw conflict('delivery_pending', `webhook delivery ${id} is still being retried`);
    return c.json(presentDelivery(result.row, { withPayload: true }), 202);
  });

  router.openapi(routes.secrets, async (c) => {
    const secrets = await ensureWebhookSecrets(c.get('db'), await webhookKeyringFromEnv(c.env), tenantId(c), now());
    return c.json({ data: secrets.map(presentSecret) }, 200);
  });

  router.openapi(routes.rotate, async (c) => {
    const body = c.req.valid('json') ?? { overlap_seconds: DEFAULT_ROTATION_OVERLAP_SECONDS };
    const rotated = await rotateWebhookSecret(c.get('db'), await webhookKeyringFromEnv(c.env), tenantId(c), now(), body.overlap_seconds);
    return c.json({ secret: presentSecret(rotated.created), previous_expire_at: rotated.previousExpireAt.toISOString() }, 201);
  });

  return router;
}
