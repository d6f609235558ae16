// Per-key request limit through the Workers Rate Limiting binding: 429 with Retry-After (docs/api.md).
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-types.ts';
import { ApiError } from '../lib/errors.ts';

/** Must match `simple.period` of the API_RATE_LIMITER binding in wrangler.toml (the binding allows 10 or 60). */
export const RATE_LIMIT_PERIOD_SECONDS = 60;

export const rateLimit = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const limiter = c.env.API_RATE_LIMITER;
    if (limiter) {
      const { success } = await limiter.limit({ key: c.get('principal').keyId });
      if (!success) {
        throw new ApiError(
          429,
          'rate_limited',
          'too many requests for this API key; retry later',
          { retry_after_seconds: RATE_LIMIT_PERIOD_SECONDS },
          { 'retry-after': String(RATE_LIMIT_PERIOD_SECONDS) },
        );
      }
    }
    await next();
  });
