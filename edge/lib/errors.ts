// The one error shape of the API: {error: {code, message, details}} (docs/api.md).
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string, id?: string) =>
  new ApiError(404, 'not_found', id ? `${what} ${id} not found` : `${what} not found`);
export const badRequest = (code: string, message: string, details?: unknown) => new ApiError(400, code, message, details);
export const unprocessable = (code: string, message: string, details?: unknown) =>
  new ApiError(422, code, message, details);
export const conflict = (code: string, message: string, details?: unknown) => new ApiError(409, code, message, details);

export type ErrorBody = { error: { code: string; message: string; details: unknown } };

export function errorBody(code: string, message: string, details: unknown = null): ErrorBody {
  return { error: { code, message, details } };
}
