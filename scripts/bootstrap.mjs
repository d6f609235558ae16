// Prepares a checkout for `npm start` and `npm test` (docs/architecture.md), so a fresh clone needs nothing else:
// - runs `npm ci` when node_modules is missing or older than the lockfile;
// - with --with-browser (`npm test`): makes sure the Chromium the web client's browser tests drive is there, installing
//   Debian's `chromium` when it is missing and this process may (root, apt-get), else saying in one line what to install;
// - makes sure PgBouncer, the local stack's connection pool (scripts/local-stack/pgbouncer.ts), is there the same way;
//   without it the stack connects the edge to PostgreSQL directly, so a missing one is a note, not a failure.
// Node built-ins only: it runs before any install.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lockfile = join(root, 'package-lock.json');
const installMarker = join(root, 'node_modules', '.package-lock.json');

/** Where Debian's `chromium` package puts the browser; test/e2e/web-client.test.ts launches the same path. */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium';
/** Where Debian's `pgbouncer` package puts the pooler (/usr/sbin is not on every user's PATH). */
export const DEBIAN_PGBOUNCER = '/usr/sbin/pgbouncer';

function installIsCurrent() {
  if (!existsSync(installMarker)) return false;
  return statSync(installMarker).mtimeMs >= statSync(lockfile).mtimeMs;
}

function installDependencies() {
  if (installIsCurrent()) return;
  console.log('[bootstrap] installing dependencies (npm ci)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // The CUDA provider is installed by the runner's Dockerfile, never by a local install.
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
  const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error('[bootstrap] npm ci failed');
    process.exit(result.status ?? 1);
  }
}

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** The browser the tests launch: CHROMIUM_PATH when set, else Debian's. */
export function chromiumPath(env = process.env) {
  return env.CHROMIUM_PATH || DEBIAN_CHROMIUM;
}

/** The one line that says what to install when the browser is missing. */
export function missingChromiumMessage(path, env = process.env) {
  return env.CHROMIUM_PATH
    ? `CHROMIUM_PATH=${path} does not exist: point it at a Chromium binary, or unset it to use Debian's chromium`
    : `${path} not found: install Debian's chromium (sudo apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary; the web client's browser tests need it`;
}

/**
 * What to do about the browser: `present`, `install` (Debian's package with apt-get), or `missing` (say what to
 * install). A CHROMIUM_PATH the user chose is never replaced by an install.
 */
export function browserPlan({ env, exists, isRoot, hasAptGet }) {
  const path = chromiumPath(env);
  if (exists(path)) return 'present';
  if (!env.CHROMIUM_PATH && isRoot && hasAptGet) return 'install';
  return 'missing';
}

/** PgBouncer's binary: on PATH, else where Debian puts it; undefined when neither. */
export function pgbouncerPath(exists = existsSync, hasCommand = onPath) {
  if (hasCommand('pgbouncer')) return 'pgbouncer';
  return exists(DEBIAN_PGBOUNCER) ? DEBIAN_PGBOUNCER : undefined;
}

/** The one line that says what runs without PgBouncer and how to get it. */
export const MISSING_PGBOUNCER_MESSAGE =
  "PgBouncer not found: the local stack connects the edge to PostgreSQL directly; install Debian's pgbouncer (sudo apt-get install pgbouncer) to pool connections as Hyperdrive does";

/** What to do about PgBouncer: `present`, `install` (Debian's package with apt-get) or `missing` (say so). */
export function pgbouncerPlan({ present, isRoot, hasAptGet }) {
  if (present) return 'present';
  return isRoot && hasAptGet ? 'install' : 'missing';
}

let aptUpdated = false;
/** `apt-get install -y <pkg>` (after one `apt-get update` per run); whether it succeeded. */
function aptInstall(pkg) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (...args) => spawnSync('apt-get', ['-q', ...args], { stdio: 'inherit', env }).status === 0;
  if (!aptUpdated && !apt('update')) return false;
  aptUpdated = true;
  return apt('install', '-y', '--no-install-recommends', pkg);
}

const isRoot = () => process.getuid?.() === 0;

function ensureBrowser() {
  const path = chromiumPath();
  const plan = browserPlan({ env: process.env, exists: existsSync, isRoot: isRoot(), hasAptGet: onPath('apt-get') });
  if (plan === 'install') {
    console.log("[bootstrap] installing Debian's chromium for the browser tests (apt-get, a minute or two, once)…");
    if (aptInstall('chromium') && existsSync(path)) return;
    console.error('[bootstrap] apt-get install -y chromium failed');
  }
  // The other tests need no browser, so this is a warning; the browser test fails with the same line.
  if (!existsSync(path)) console.error(`[bootstrap] ${missingChromiumMessage(path)}`);
}

function ensurePgBouncer() {
  const plan = pgbouncerPlan({ present: pgbouncerPath() !== undefined, isRoot: isRoot(), hasAptGet: onPath('apt-get') });
  if (plan === 'install') {
    console.log("[bootstrap] installing Debian's pgbouncer, the local stack's connection pool (apt-get, once)…");
    if (aptInstall('pgbouncer') && pgbouncerPath() !== undefined) return;
    console.error('[bootstrap] apt-get install -y pgbouncer failed');
  }
  if (pgbouncerPath() === undefined) console.error(`[bootstrap] ${MISSING_PGBOUNCER_MESSAGE}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  installDependencies();
  ensurePgBouncer();
  if (process.argv.includes('--with-browser')) ensureBrowser();
}
