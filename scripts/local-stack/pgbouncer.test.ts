// The local stack's PgBouncer (scripts/local-stack/pgbouncer.ts) against a real PostgreSQL: queries, session pooling
// with DISCARD ALL between clients, a cancel request, the direct connection where PgBouncer is missing, and the SCRAM
// verifier clients are checked against.
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MISSING_PGBOUNCER_MESSAGE, pgbouncerPath } from '../bootstrap.mjs';
import { createFreshDatabase, startPostgres, type PostgresServer } from '../../test/support/postgres.ts';
import { describeRoute, LOCAL_SCRAM_ITERATIONS, scramVerifier, startPgBouncer, type DatabaseRoute } from './pgbouncer.ts';

/** The bootstrap installs PgBouncer where it can (root, apt-get); elsewhere only the fallback is testable. */
const installed = pgbouncerPath() !== undefined;

let server: PostgresServer;
let database: { url: string; drop(): Promise<void> };
let dataDir: string;
let route: DatabaseRoute | undefined;
/** PgBouncer's log, for failure messages. */
const log: string[] = [];

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
  server = await startPostgres();
  database = await createFreshDatabase(server.adminUrl, 'hdb_pgbouncer');
  await session(database.url, (sql) => sql`create table notes (id serial primary key, text text not null)`);
  // A private folder (0700), as a clone under root's home is: PgBouncer's files must still be readable to it.
  dataDir = await mkdtemp(join(tmpdir(), 'hdb-pgbouncer-'));
  if (installed) route = await startPgBouncer({ targetUrl: database.url, dataDir, poolSize: 2, onOutput: (_, line) => log.push(line) });
});

afterAll(async () => {
  await route?.stop();
  await database?.drop();
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe.runIf(installed)('the local stack through PgBouncer', () => {
  const url = () => {
    if (route?.via !== 'pgbouncer') throw new Error(`expected PgBouncer, got ${route && describeRoute(route)}\n${log.join('\n')}`);
    return route.url;
  };

  it('runs queries and serves one client after another from the same warm server connection', async () => {
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) {
      pids.add(await session(url(), async (sql) => {
        await sql`insert into notes (text) values (${`note ${i}`})`;
        return backendPid(sql);
      }));
    }
    expect(pids.size).toBe(1);
    expect(await session(database.url, (sql) => sql`select count(*)::int as n from notes`.then(([r]) => r!.n))).toBe(5);
  });

  it('resets the session between clients: settings and prepared statements do not leak', async () => {
    const pid = await session(url(), async (sql) => {
      await sql`set statement_timeout = 1234`;
      await sql`select text from notes where id = ${1}`; // postgres.js prepares a named statement
      expect(await sql`select statement from pg_prepared_statements where statement like 'select text from notes%'`).toHaveLength(1);
      return backendPid(sql);
    });
    await session(url(), async (sql) => {
      expect(await backendPid(sql)).toBe(pid);
      expect((await sql`show statement_timeout`)[0]!.statement_timeout).toBe('0');
      expect(await sql`select statement from pg_prepared_statements where statement like 'select text from notes%'`).toHaveLength(0);
    });
  });

  it('forwards a cancel request to the backend running the query', async () => {
    await session(url(), async (sql) => {
      const started = Date.now();
      const query = sql`select pg_sleep(30)`;
      const result = query.then(() => 'finished', (error: Error) => error.message);
      // Cancel once the statement runs on the server, not while it is still being sent.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await query.cancel();
      expect(await result).toMatch(/canceling statement due to user request/);
      expect(Date.now() - started).toBeLessThan(10_000);
      // The session survives its canceled statement.
      expect((await sql`select 1 as one`)[0]!.one).toBe(1);
    });
  });

  it('refuses a wrong password', async () => {
    const wrong = new URL(url());
    wrong.password = 'not-the-password';
    await expect(session(wrong.toString(), (sql) => sql`select 1`)).rejects.toThrow(/password authentication failed|SASL authentication failed/);
  });

  it('makes clients beyond its pool size wait instead of opening more server connections', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => session(url(), (sql) => sql`select ${i}::int as i, pg_backend_pid() as pid, pg_sleep(0.05)`.then(([r]) => r!))),
    );
    expect(results.map((r) => r.i)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(results.map((r) => r.pid)).size).toBeLessThanOrEqual(2);
  });
});

describe('the local stack without PgBouncer', () => {
  it('connects the edge to PostgreSQL directly and says so', async () => {
    const direct = await startPgBouncer({ targetUrl: database.url, dataDir, binary: join(dataDir, 'no-such-pgbouncer') });
    expect(direct).toMatchObject({ via: 'direct', url: database.url });
    expect(describeRoute(direct)).toContain(MISSING_PGBOUNCER_MESSAGE);
    expect(await session(direct.url, (sql) => sql`select 41 + 1 as n`.then(([r]) => r!.n))).toBe(42);
    await direct.serving(5_000);
  });

  it('says when no query gets through in time', async () => {
    const nowhere = await startPgBouncer({ targetUrl: 'postgres://postgres:postgres@127.0.0.1:1/none', dataDir, binary: join(dataDir, 'no-such-pgbouncer') });
    await expect(nowhere.serving(500)).rejects.toThrow(/no query through 127\.0\.0\.1:1 succeeded within 0\.5 s/);
  });
});

describe("the auth file's SCRAM verifier", () => {
  // RFC 7677 §3's exchange (user "user", password "pencil"): a server holding only our verifier must accept the
  // client's proof and answer the RFC's server signature.
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const authMessage = [
    'n=user,r=rOprNGfwEbeRWgbNEkqO',
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  ].join(',');
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest();

  it('checks the RFC 7677 client proof and signs as the RFC server does', () => {
    const verifier = scramVerifier('pencil', 4096, salt);
    const match = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
    expect(match?.[1]).toBe('W22ZaJ0SNY7soEsUEjb6gQ==');
    const storedKey = Buffer.from(match![2]!, 'base64');
    const serverKey = Buffer.from(match![3]!, 'base64');
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const clientSignature = hmac(storedKey, authMessage);
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ clientSignature[i]!));
    expect(createHash('sha256').update(clientKey).digest().equals(storedKey)).toBe(true);
    expect(hmac(serverKey, authMessage).toString('base64')).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  it('writes the local count of iterations and a fresh salt each time', () => {
    const [a, b] = [scramVerifier('postgres'), scramVerifier('postgres')];
    expect(a).toMatch(new RegExp(`^SCRAM-SHA-256\\$${LOCAL_SCRAM_ITERATIONS}:`));
    expect(a).not.toBe(b);
  });
});
