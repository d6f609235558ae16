// PgBouncer in front of the local PostgreSQL, standing in for Hyperdrive. A Worker cannot keep a socket across
// requests, so the edge opens a connection per request; in production Hyperdrive answers it and hands the queries to a
// warm server connection. Locally each such connection would start a PostgreSQL backend (fork, password check,
// catalog caches), several milliseconds of CPU per request. PgBouncer answers the startup itself and lends a warm
// server connection for the client's session (pool_mode = session), resetting it with DISCARD ALL afterwards.
// Debian's `pgbouncer`, installed by scripts/bootstrap.mjs when missing and possible; without it the edge connects to
// PostgreSQL directly, and the stack says which one runs.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { MISSING_PGBOUNCER_MESSAGE, pgbouncerPath } from '../bootstrap.mjs';
import { freePort, portAnswers } from './ports.ts';
import { SERVER_ACCOUNT, serverUser } from './embedded-postgres.ts';
import { startChild, type Child } from './processes.ts';

/** How the edge reaches PostgreSQL: through PgBouncer, or directly where PgBouncer is missing. */
export type DatabaseRoute = (
  | { readonly via: 'pgbouncer'; readonly port: number; readonly version: string }
  | { readonly via: 'direct'; readonly reason: string }
) & {
  /** What the edge connects to. */
  readonly url: string;
  /** Resolves once a query through `url` succeeds, e.g. after PostgreSQL restarted (or rejects after `timeoutMs`). */
  serving(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
};

export interface PgBouncerOptions {
  /** The real server, e.g. postgres://user:password@127.0.0.1:5432/db. */
  readonly targetUrl: string;
  /** PgBouncer's generated config and auth file go to `<dataDir>/pgbouncer/`, rewritten at each start. */
  readonly dataDir: string;
  /** The binary; when absent, on PATH or where Debian puts it (scripts/bootstrap.mjs). */
  readonly binary?: string;
  /** Server connections per database and user; clients beyond it wait for one (PgBouncer's default_pool_size). */
  readonly poolSize?: number;
  readonly onOutput?: (name: string, line: string) => void;
}

/**
 * PBKDF2 iterations of the SCRAM verifier clients are checked against. Each Worker request opens a connection and so
 * runs a SCRAM exchange; with the password in clear PgBouncer derived a salted password at 4096 iterations for every
 * login (7–9 ms of its CPU per request) and the Worker again (1.7–2.2 ms), which halved the edge's throughput
 * (bench/RESULTS.md, "2026-12-07: the edge against the hello world"). Iterations slow an offline guess of the password
 * from a stolen verifier: the embedded server's password is fixed and known (scripts/local-stack/postgres.ts), and
 * this file replaces one that held the password in clear, so a low count loses nothing here. RFC 7677 §4 asks for at
 * least 4096 where verifiers must resist guessing.
 */
export const LOCAL_SCRAM_ITERATIONS = 16;

/** PgBouncer's own default; the edge holds a connection only for the length of one request. */
const DEFAULT_POOL_SIZE = 20;
/** Room for the load benchmark's 200 connections and then some (bench/edge.ts). */
const MAX_CLIENT_CONNECTIONS = 1000;
const READY_TIMEOUT_MS = 30_000;
/** Seconds a client may wait for a server connection (see query_wait_timeout in pgbouncerConfig). */
const QUERY_WAIT_TIMEOUT_S = 2;

type Target = { host: string; port: number; user: string; password: string; database: string };

function parseTarget(url: string): Target {
  const parsed = new URL(url);
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error(`not a PostgreSQL URL: ${parsed.protocol}`);
  const user = decodeURIComponent(parsed.username);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    user,
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || user,
  };
}

/** A value in a libpq-style connection string (PgBouncer's [databases] section). */
const connValue = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
/** A name or password in the auth file: double-quoted, quotes doubled. */
const authValue = (value: string) => `"${value.replace(/"/g, '""')}"`;

/**
 * A SCRAM-SHA-256 verifier as PostgreSQL stores one (RFC 5802 §3: StoredKey = H(ClientKey), ServerKey), for PgBouncer's
 * auth file: clients are checked against it without PgBouncer deriving a salted password per login, as it does for a
 * password kept in clear.
 */
export function scramVerifier(password: string, iterations = LOCAL_SCRAM_ITERATIONS, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A server without a password (trust) is logged in to as the client's user, as PgBouncer does by default. */
const serverLogin = (target: Target) => (target.password ? ` user=${connValue(target.user)} password=${connValue(target.password)}` : '');
/** The auth file's secret: a verifier, or the empty password of a server that trusts loopback (kept as it is). */
const authSecret = (target: Target) => (target.password ? scramVerifier(target.password) : '');

/**
 * pgbouncer.ini for one database: session pooling on loopback, SCRAM for clients, logs on stderr. PgBouncer logs in to
 * the server with the password in the [databases] line: the auth file holds only a verifier.
 */
export function pgbouncerConfig(target: Target, port: number, authFile: string, poolSize = DEFAULT_POOL_SIZE): string {
  const databaseName = /^[A-Za-z0-9_]+$/.test(target.database) ? target.database : authValue(target.database);
  return [
    '; Written by scripts/local-stack/pgbouncer.ts at every start of the local stack; edits are lost.',
    '[databases]',
    `${databaseName} = host=${connValue(target.host)} port=${target.port} dbname=${connValue(target.database)}${serverLogin(target)}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${authFile}`,
    'pool_mode = session',
    'server_reset_query = DISCARD ALL',
    `default_pool_size = ${poolSize}`,
    `max_client_conn = ${MAX_CLIENT_CONNECTIONS}`,
    // A local server that restarts (the stack's outage tests) is tried again after a second, not PgBouncer's 15.
    'server_login_retry = 1',
    // While PostgreSQL is down, a client that PgBouncer has let in waits for a server connection; past this it gets a
    // connection error (SQLSTATE 08P01), which the edge answers 503 (edge/db/unavailable.ts), as it does when
    // Hyperdrive cannot reach the origin. PgBouncer's 120 s would hold every request for the whole outage. Under load
    // a request waits for a pooled connection for milliseconds (one Worker request holds one for its queries only).
    `query_wait_timeout = ${QUERY_WAIT_TIMEOUT_S}`,
    // One connection per Worker request: a line for each would drown the stack's output.
    'log_connections = 0',
    'log_disconnections = 0',
    'log_stats = 0',
    '',
  ].join('\n');
}

/**
 * Starts PgBouncer for `targetUrl` and returns the URL the edge should use; where the binary is missing, the target
 * itself (a direct connection) with the reason.
 */
export async function startPgBouncer(options: PgBouncerOptions): Promise<DatabaseRoute> {
  const binary = options.binary ?? pgbouncerPath();
  if (!binary || (options.binary && !existsSync(options.binary))) {
    const url = options.targetUrl;
    return { via: 'direct', url, reason: MISSING_PGBOUNCER_MESSAGE, serving: (timeoutMs) => serving(url, timeoutMs), stop: async () => {} };
  }
  const target = parseTarget(options.targetUrl);
  const dir = join(options.dataDir, 'pgbouncer');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const authFile = join(dir, 'userlist.txt');
  const configFile = join(dir, 'pgbouncer.ini');
  writeFileSync(authFile, `${authValue(target.user)} ${authValue(authSecret(target))}\n`, { mode: 0o600 });
  writeFileSync(configFile, pgbouncerConfig(target, port, authFile, options.poolSize), { mode: 0o600 });
  chmodSync(dir, 0o700);
  // PgBouncer refuses to run as root: as root it switches to PostgreSQL's account (-u) once it has read its files, so
  // they stay root's and private, wherever the clone is.
  const asRoot = serverUser() !== undefined;
  const version = /PgBouncer\s+(\S+)/.exec(spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown';
  const child: Child = startChild('pgbouncer', binary, [...(asRoot ? ['-u', SERVER_ACCOUNT] : []), configFile], process.env, dir, options.onOutput);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await portAnswers('127.0.0.1', port))) {
    if (child.process.exitCode !== null) throw new Error(`PgBouncer exited with code ${child.process.exitCode} before it was ready (config: ${configFile})`);
    if (Date.now() > deadline) {
      await child.stop();
      throw new Error(`PgBouncer did not listen on 127.0.0.1:${port} within ${READY_TIMEOUT_MS / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const url = new URL(options.targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return { via: 'pgbouncer', url: url.toString(), port, version, serving: (timeoutMs) => serving(url.toString(), timeoutMs), stop: () => child.stop() };
}

/**
 * Polls `select 1` through `url`. After a restart of PostgreSQL, PgBouncer answers its first clients with an error
 * until it has logged in to the server again (PgBouncer 1.18 marks the pool failed on the "starting up" refusal).
 */
async function serving(url: string, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sql = postgres(url, { max: 1, connect_timeout: 5, fetch_types: false, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no query through ${new URL(url).host} succeeded within ${timeoutMs / 1000} s: ${(error as Error).message}`);
    } finally {
      await sql.end({ timeout: 1 });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The line the stack logs: which way the edge reaches PostgreSQL. */
export function describeRoute(route: DatabaseRoute): string {
  return route.via === 'pgbouncer'
    ? `database pool: PgBouncer ${route.version} on 127.0.0.1:${route.port}, session pooling (stands in for Hyperdrive)`
    : `database pool: none, the edge connects to PostgreSQL directly (${route.reason})`;
}
