// Schemas and helpers shared by the routers: the error shape, security, id parameters.
import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'not_found' }),
      message: z.string(),
      details: z.unknown().nullable(),
    }),
  })
  .openapi('Error');

const ERROR_DESCRIPTIONS = {
  400: 'Malformed request (invalid JSON, bad cursor)',
  401: 'Missing, invalid or revoked API key',
  403: 'The key lacks the role this endpoint needs',
  404: 'Not found (also for objects of another tenant)',
  409: 'Conflict (idempotency key reuse, state that forbids the action)',
  413: 'Body or file too large',
  415: 'Unsupported media type',
  422: 'The request does not validate',
  503: 'A service this request needs cannot answer now; retry after Retry-After',
} as const;

export function errorResponses<const S extends keyof typeof ERROR_DESCRIPTIONS>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: ERROR_DESCRIPTIONS[status], content: { 'application/json': { schema: ErrorSchema } } },
    ]),
  ) as unknown as { [K in S]: { description: string; content: { 'application/json': { schema: typeof ErrorSchema } } } };
}

export const bearer = [{ bearerAuth: [] }];

export const IdParam = (name: string, example: string) =>
  z.object({ id: z.string().min(1).max(64).openapi({ param: { name: 'id', in: 'path' }, example, description: `${name} id` }) });

export const IdempotencyHeader = z.object({
  'idempotency-key': z
    .string()
    .max(255)
    .optional()
    .openapi({ description: 'Makes the create safe to retry: the same key and body return the first response' }),
});

export function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}
