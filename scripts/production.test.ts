// The production CLI against a real, fresh Postgres: migrate twice (the second applies nothing), mint an admin key
// the edge accepts (stored hashed), and the secrets it prints have the forms the edge and runner require.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_SECRET_LENGTH } from '../contract/index.ts';
import { hashApiKey, isWellFormedKey } from '../edge/lib/api-keys.ts';
import { parseKeyring } from '../edge/lib/sealing.ts';
import { createFreshDatabase, startPostgres, type PostgresServer } from '../test/support/postgres.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function prod(args: string[], env: Record<string, string> = {}) {
  const { PATH, HOME } = process.env;
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'production.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: PATH ?? '', HOME: HOME ?? '', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: run.status, stdout: run.stdout.trim(), stderr: run.stderr.trim() };
}

let server: PostgresServer;
let database: { url: string; drop(): Promise<void> };
beforeAll(async () => {
  server = await startPostgres();
  database = await createFreshDatabase(server.adminUrl, 'hdb_prod_cli');
});
afterAll(async () => {
  await database?.drop();
  await server?.stop();
});

describe('npm run prod', () => {
  it('migrates a fresh database, and again without change', async () => {
    expect(prod(['migrate'], { DATABASE_URL: database.url })).toMatchObject({ status: 0, stdout: 'migrations applied' });
    expect(prod(['migrate'], { DATABASE_URL: database.url })).toMatchObject({ status: 0, stdout: 'migrations applied' });
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      const tables = await sql<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`;
      expect(tables.map((t) => t.tablename)).toEqual(expect.arrayContaining(['tenants', 'api_keys', 'jobs']));
      const applied = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`;
      expect(applied[0]!.n).toBeGreaterThan(0);
    } finally {
      await sql.end();
    }
  });

  it('mints an admin key that is stored only as its hash', async () => {
    const run = prod(['admin-key', 'first admin'], { DATABASE_URL: database.url });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^hdb_admin_/);
    expect(isWellFormedKey(run.stdout)).toBe(true);
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ key_hash: string; role: string; name: string }[]>`SELECT key_hash, role, name FROM api_keys`;
      expect(rows).toEqual([{ key_hash: await hashApiKey(run.stdout), role: 'admin', name: 'first admin' }]);
    } finally {
      await sql.end();
    }
  });

  it('prints secrets of the required forms, and refuses without DATABASE_URL or a known command', async () => {
    const sealing = prod(['sealing-key', 'prod1']);
    expect(sealing.status).toBe(0);
    expect((await parseKeyring(sealing.stdout)).keyIds).toEqual(['prod1']);
    const secret = prod(['runner-secret']);
    expect(secret.stdout.length).toBeGreaterThanOrEqual(MIN_SECRET_LENGTH);
    expect(prod(['runner-secret']).stdout).not.toBe(secret.stdout);
    expect(prod(['migrate'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/^prod: set DATABASE_URL/) });
    expect(prod(['deploy'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/unknown command "deploy"/) });
  });
});
