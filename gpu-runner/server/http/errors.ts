// One error shape for every refusal, the same as the edge's (docs/api.md): `{error: {code, message, details}}`.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details?: unknown,
  headers?: Record<string, string>,
): Response {
  return c.json({ error: { code, message, ...(details === undefined ? {} : { details }) } }, status, headers);
}
