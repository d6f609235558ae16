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
import postgres from 'postgres';
import { MISSING_PGBOUNCER_MESSAGE, pgbouncerPath } from '../bootstrap.mjs';
import { freePort, portAnswers } from '../../test/support/postgres.ts';
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

/** pgbouncer.ini for one database: session pooling on loopback, SCRAM for clients, logs on stderr. */
export function pgbouncerConfig(target: Target, port: number, authFile: string, poolSize = DEFAULT_POOL_SIZE): string {
  const databaseName = /^[A-Za-z0-9_]+$/.test(target.database) ? target.database : authValue(target.database);
  return [
    '; Written by scripts/local-stack/pgbouncer.ts at every start of the local stack; edits are lost.',
    '[databases]',
    `${databaseName} = host=${connValue(target.host)} port=${target.port} dbname=${connValue(target.database)}`,
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
  writeFileSync(authFile, `${authValue(target.user)} ${authValue(target.password)}\n`, { mode: 0o600 });
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
