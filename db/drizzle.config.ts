import { defineConfig } from 'drizzle-kit';

// Generation needs no database: drizzle-kit diffs db/schema.ts against the snapshots in migrations/meta.
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: process.env.HDB_MIGRATIONS_OUT ?? './migrations',
});
