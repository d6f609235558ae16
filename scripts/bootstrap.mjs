// Runs `npm ci` when node_modules is missing or older than the lockfile, so a fresh clone needs
// nothing before `npm start` or `npm test` (DESIGN §8). Node built-ins only: it runs before any install.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lockfile = join(root, 'package-lock.json');
const installMarker = join(root, 'node_modules', '.package-lock.json');

function installIsCurrent() {
  if (!existsSync(installMarker)) return false;
  return statSync(installMarker).mtimeMs >= statSync(lockfile).mtimeMs;
}

if (!installIsCurrent()) {
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
