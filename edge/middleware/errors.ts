// Every failure leaves as {error: {code, message, details}}; 5xx only for our own faults, and 503 with Retry-After
// while the database cannot be reached (docs/api.md).
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import type { AppEnv } from '../app-types.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { ApiError, errorBody } from '../lib/errors.ts';

/**
 * A PostgreSQL restart or failover takes seconds; asking clients to come back after a few keeps them from hammering
 * a server that is starting up, and nothing was applied (every accepted write commits in one transaction).
 */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

export function zodDetails(error: ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
}

export const handleError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof ApiError) {
    return c.json(errorBody(err.code, err.message, err.details), err.status, err.headers);
  }
  if (err instanceof ZodError) {
    return c.json(errorBody('invalid_request', 'the request does not match the schema', zodDetails(err)), 422);
  }
  if (err instanceof HTTPException) {
    // Hono's own validators throw 400 for a body that is not JSON.
    const malformed = /malformed json/i.test(err.message);
    return c.json(
      errorBody(malformed ? 'invalid_json' : 'bad_request', malformed ? 'request body is not valid JSON' : err.message),
      err.status === 400 || err.status < 400 || err.status >= 600 ? 400 : (err.status as 400),
    );
  }
  if (isDatabaseUnavailable(err)) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'database unavailable', path: c.req.path, error: String(err) }));
    return c.json(
      errorBody('database_unavailable', `the database is unavailable; nothing was changed, retry in ${DATABASE_RETRY_AFTER_SECONDS} s`),
      503,
      { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
    );
  }
  console.error(JSON.stringify({ level: 'error', msg: 'unhandled', path: c.req.path, error: String(err), stack: (err as Error).stack }));
  return c.json(errorBody('internal_error', 'something went wrong on our side'), 500);
};

export const handleNotFound: NotFoundHandler<AppEnv> = (c: Context<AppEnv>) =>
  c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404);
