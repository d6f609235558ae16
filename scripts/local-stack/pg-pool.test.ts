// The local stack's connection pool against a real PostgreSQL with password authentication (embedded server).
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/e2e/support/api.ts';
import { createFreshDatabase, startPostgres, type PostgresServer } from '../../test/support/postgres.ts';
import { startPgPool, type PgPool } from './pg-pool.ts';

let server: PostgresServer;
let database: { url: string; drop(): Promise<void> };
let pool: PgPool;

/** The pool resets a server connection after its client left; the next client finds it idle once that is done. */
const settled = () => eventually('an idle server connection', () => (pool.stats().idle > 0 ? true : undefined));

/** A client as the Worker makes one: a fresh postgres.js client per request, ended afterwards. */
async function session<T>(url: string, body: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, fetch_types: false, onnotice: () => {} });
  try {
    return await body(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const backendPid = (sql: postgres.Sql) => sql`select pg_backend_pid() as pid`.then(([row]) => row!.pid as number);

beforeAll(async () => {
  server = await startPostgres({ preferEmbedded: true });
  database = await createFreshDatabase(server.adminUrl, 'hdb_pool');
  await session(database.url, (sql) => sql`create table notes (id serial primary key, text text not null)`);
  pool = await startPgPool({ targetUrl: database.url, maxServerConnections: 2 });
});

afterAll(async () => {
  await pool?.close();
  await database?.drop();
  await server?.stop();
});

describe('the local PostgreSQL pool', () => {
  it('serves one client connection after another from the same warm server connection', async () => {
    const before = pool.stats();
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) {
      pids.add(await session(pool.url, async (sql) => {
        await sql`insert into notes (text) values (${`note ${i}`})`;
        return backendPid(sql);
      }));
      await settled();
    }
    expect(pids.size).toBe(1);
    expect(pool.stats().clientSessions - before.clientSessions).toBe(5);
    expect(pool.stats().serverConnectionsOpened).toBe(1);
    expect(await session(database.url, (sql) => sql`select count(*)::int as n from notes`.then(([r]) => r!.n))).toBe(5);
  });

  it('resets the session between clients: settings and prepared statements do not leak', async () => {
    const pid = await session(pool.url, async (sql) => {
      await sql`set statement_timeout = 1234`;
      await sql`select text from notes where id = ${1}`; // postgres.js prepares a named statement
      expect(await sql`select statement from pg_prepared_statements where statement like 'select text from notes%'`).toHaveLength(1);
      return backendPid(sql);
    });
    await settled();
    await session(pool.url, async (sql) => {
      expect(await backendPid(sql)).toBe(pid);
      expect((await sql`show statement_timeout`)[0]!.statement_timeout).toBe('0');
      const left = await sql`select statement from pg_prepared_statements where statement like 'select text from notes%'`;
      expect(left).toHaveLength(0);
    });
  });

  it('drops the server connection of a client that leaves inside a transaction, so nothing of it is committed', async () => {
    const pid = await session(pool.url, async (sql) => {
      await sql`begin`;
      await sql`insert into notes (text) values ('uncommitted')`;
      return backendPid(sql);
    });
    await session(pool.url, async (sql) => {
      expect(await backendPid(sql)).not.toBe(pid);
      expect((await sql`select count(*)::int as n from notes where text = 'uncommitted'`)[0]!.n).toBe(0);
    });
  });

  it('makes clients beyond its size wait for a server connection instead of opening more', async () => {
    const opened = pool.stats().serverConnectionsOpened;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => session(pool.url, (sql) => sql`select ${i}::int as i, pg_sleep(0.02)`.then(([r]) => r!.i as number))),
    );
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(pool.stats().serverConnectionsOpened - opened).toBeLessThanOrEqual(2);
  });

  it('refuses a wrong password or another database', async () => {
    const wrongPassword = new URL(pool.url);
    wrongPassword.password = 'not-the-password';
    await expect(session(wrongPassword.toString(), (sql) => sql`select 1`)).rejects.toThrow(/password authentication failed/);
    const otherDatabase = new URL(pool.url);
    otherDatabase.pathname = '/postgres';
    await expect(session(otherDatabase.toString(), (sql) => sql`select 1`)).rejects.toThrow(/serves database/);
  });

  it('replaces a server connection that PostgreSQL closed', async () => {
    const pid = await session(pool.url, backendPid);
    await session(database.url, (sql) => sql`select pg_terminate_backend(${pid})`);
    await eventually('the pool noticing the closed connection', () => (pool.stats().idle < 2 ? true : undefined));
    await eventually('a working session on another backend', async () => {
      const next = await session(pool.url, backendPid).catch(() => undefined);
      return next !== undefined && next !== pid ? true : undefined;
    });
  });

  it('authenticates to the server with SCRAM-SHA-256 too', async () => {
    await session(database.url, async (sql) => {
      const [{ hba_file: hbaFile }] = (await sql`select current_setting('hba_file') as hba_file`) as unknown as [{ hba_file: string }];
      const { writeFile } = await import('node:fs/promises');
      await writeFile(hbaFile, 'host all all 127.0.0.1/32 scram-sha-256\n');
      await sql`select pg_reload_conf()`;
    });
    const scramPool = await startPgPool({ targetUrl: database.url });
    try {
      expect(await session(scramPool.url, (sql) => sql`select 41 + 1 as n`.then(([r]) => r!.n))).toBe(42);
      expect(scramPool.stats().serverConnectionsOpened).toBe(1);
    } finally {
      await scramPool.close();
    }
  });
});
