// Prepares a checkout for `npm start` and `npm test` (docs/architecture.md), so a fresh clone needs nothing else:
// - runs `npm ci` when node_modules is missing or older than the lockfile;
// - with --with-browser (`npm test`): makes sure the Chromium the web client's browser tests drive is there, installing
//   Debian's `chromium` when it is missing and this process may (root, apt-get), else saying in one line what to install.
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

function ensureBrowser() {
  const path = chromiumPath();
  const plan = browserPlan({ env: process.env, exists: existsSync, isRoot: process.getuid?.() === 0, hasAptGet: onPath('apt-get') });
  if (plan === 'install') {
    console.log("[bootstrap] installing Debian's chromium for the browser tests (apt-get, a minute or two, once)…");
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const apt = (...args) => spawnSync('apt-get', ['-q', ...args], { stdio: 'inherit', env }).status === 0;
    if (apt('update') && apt('install', '-y', 'chromium') && existsSync(path)) return;
    console.error('[bootstrap] apt-get install -y chromium failed');
  }
  // The other tests need no browser, so this is a warning; the browser test fails with the same line.
  if (!existsSync(path)) console.error(`[bootstrap] ${missingChromiumMessage(path)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  installDependencies();
  if (process.argv.includes('--with-browser')) ensureBrowser();
}
