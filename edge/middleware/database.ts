// A postgres.js client for this request only, closed after the response with waitUntil. A route that does slow work
// without the database (an upload's body and R2 writes) gives its connection back first with releaseConnection: the
// pool behind the client (PgBouncer in session mode locally, Hyperdrive in production) lends a server connection to a
// client for as long as its socket is open, so a request holding one across the R2 write starved the pool
// (bench/RESULTS.md, uploads at 200 connections).
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-types.ts';
import { openDb, type DbHandle } from '../db/client.ts';

export const database = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    // Every client this request opened: one, plus one per release that a later query needed.
    const opened: DbHandle[] = [];
    const open = () => {
      const handle = openDb(c.env);
      opened.push(handle);
      c.set('db', handle.db);
    };
    c.set('releaseConnection', () => {
      // Ending the client lets its queries still in flight (auth's last_used_at write) finish, then closes the socket.
      // postgres.js connects lazily, so the fresh client costs no connection until something queries it.
      c.executionCtx.waitUntil(opened.at(-1)!.close());
      open();
    });
    open();
    try {
      await next();
    } finally {
      c.executionCtx.waitUntil(Promise.all(opened.map((handle) => handle.close())));
    }
  });

/**
 * Gives this request's pooled connection back; the next query through `c.get('db')` opens a new one. Read `c.get('db')`
 * again after calling it: a `Database` taken before belongs to the ended client.
 */
export function releaseConnection(c: Context<AppEnv>): void {
  c.get('releaseConnection')();
}

/** Gives back the connection the request used so far (auth's key lookup), before work that needs none. */
export const releaseConnectionFirst = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    releaseConnection(c);
    await next();
  });
