// The single source of truth for Postgres: migrations/ is generated from this with drizzle-kit (npm run db:generate).
export * from './schema/tenants.ts';
export * from './schema/subjects.ts';
export * from './schema/jobs.ts';
export * from './schema/weights.ts';
export * from './schema/generations.ts';
export * from './schema/idempotency.ts';
export * from './schema/webhooks.ts';
