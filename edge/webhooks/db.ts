import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js';

/** Any drizzle database or transaction over postgres.js, with or without the relational schema attached. */
export type WebhookDb = PostgresJsDatabase<Record<string, unknown>>;
