// One postgres.js client per request or batch (Workers cannot share sockets across requests), closed by the caller
// with waitUntil. Hyperdrive pools the real connections in production (the local stack's PgBouncer stands in for it).
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';

/**
 * One connection per request or batch: its queries queue (and pipeline) on it. A request that held one pooled
 * connection while waiting for a second could deadlock a bounded pool once every pooled connection is held that way.
 */
const MAX_CONNECTIONS_PER_REQUEST = 1;

/**
 * Without drizzle's relational schema: the edge builds every query from the tables, and extracting the relational
 * config on each per-request client cost about half a millisecond of CPU per request.
 */
export type Database = PostgresJsDatabase;
/** The bindings a connection needs; structural, so Node tools (the local stack) can use this module too. */
export type DbBindings = { HYPERDRIVE?: { connectionString: string }; DATABASE_URL?: string };
export type DbHandle = { db: Database; sql: postgres.Sql; close(): Promise<void> };

export function connectionString(env: DbBindings): string {
  const url = env.HYPERDRIVE?.connectionString ?? env.DATABASE_URL;
  if (!url) throw new Error('no database configured: bind HYPERDRIVE or set DATABASE_URL');
  return url;
}

export function openDb(env: DbBindings): DbHandle {
  const sql = postgres(connectionString(env), {
    max: MAX_CONNECTIONS_PER_REQUEST,
    // Hyperdrive and short-lived clients gain nothing from the type-fetch round trip at connect.
    fetch_types: false,
    onnotice: () => {},
  });
  return {
    db: drizzle(sql),
    sql,
    close: () => sql.end({ timeout: 5 }),
  };
}

/** A database or an open transaction: the job transitions run in either. */
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];
export type Queryable = Database | Transaction;
