import { createMiddleware } from 'hono/factory';
import { ApiError } from '../lib/errors.ts';

/** 415 for a body of another media type, before any parsing. */
export const requireContentType = (mediaType: string) =>
  createMiddleware(async (c, next) => {
    const actual = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (actual !== mediaType) {
      throw new ApiError(415, 'unsupported_media_type', `send the body as ${mediaType}`, { content_type: actual || null });
    }
    await next();
  });
