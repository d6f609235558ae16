// A postgres.js client for this request only, closed after the response with waitUntil.
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-types.ts';
import { openDb } from '../db/client.ts';

export const database = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const handle = openDb(c.env);
    c.set('db', handle.db);
    try {
      await next();
    } finally {
      c.executionCtx.waitUntil(handle.close());
    }
  });
