import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { browserPlan, DEBIAN_CHROMIUM, DEBIAN_PGBOUNCER, missingChromiumMessage, pgbouncerPath, pgbouncerPlan } from './bootstrap.mjs';

describe('bootstrap', () => {
  it('is a no-op when node_modules is newer than the lockfile', () => {
    const out = execFileSync(process.execPath, ['scripts/bootstrap.mjs'], { encoding: 'utf8' });
    expect(out).not.toContain('npm ci');
  });

  it('says in one line what to set when the chosen CHROMIUM_PATH is missing, and installs nothing', () => {
    const run = spawnSync(process.execPath, ['scripts/bootstrap.mjs', '--with-browser'], {
      encoding: 'utf8',
      env: { ...process.env, CHROMIUM_PATH: '/nonexistent/chromium' },
    });
    expect(run.status).toBe(0);
    expect(run.stdout).not.toMatch(/apt-get|installing/);
    // Only the browser's line: a machine without PgBouncer adds its own note, on a line of its own.
    const browserLines = run.stderr.split('\n').filter((line) => /chromium/i.test(line));
    expect(browserLines).toEqual(['[bootstrap] CHROMIUM_PATH=/nonexistent/chromium does not exist: point it at a Chromium binary, or unset it to use Debian\'s chromium']);
  });
});

describe('the browser for the browser tests', () => {
  const context = { env: {}, exists: () => false, isRoot: true, hasAptGet: true };

  it("installs Debian's chromium only when it is missing, as root, with apt-get", () => {
    expect(browserPlan(context)).toBe('install');
    expect(browserPlan({ ...context, exists: (path) => path === DEBIAN_CHROMIUM })).toBe('present');
    expect(browserPlan({ ...context, isRoot: false })).toBe('missing');
    expect(browserPlan({ ...context, hasAptGet: false })).toBe('missing');
  });

  it('never installs over a CHROMIUM_PATH the user chose', () => {
    expect(browserPlan({ ...context, env: { CHROMIUM_PATH: '/opt/chrome/chrome' } })).toBe('missing');
    expect(browserPlan({ ...context, env: { CHROMIUM_PATH: '/opt/chrome/chrome' }, exists: (path) => path === '/opt/chrome/chrome' })).toBe('present');
  });

  it('names the package to install', () => {
    expect(missingChromiumMessage(DEBIAN_CHROMIUM, {})).toMatch(/^\/usr\/bin\/chromium not found: install Debian's chromium \(sudo apt-get install chromium\)/);
  });
});

describe("the local stack's PgBouncer", () => {
  it("installs Debian's pgbouncer only when it is missing, as root, with apt-get", () => {
    expect(pgbouncerPlan({ present: false, isRoot: true, hasAptGet: true })).toBe('install');
    expect(pgbouncerPlan({ present: true, isRoot: true, hasAptGet: true })).toBe('present');
    expect(pgbouncerPlan({ present: false, isRoot: false, hasAptGet: true })).toBe('missing');
    expect(pgbouncerPlan({ present: false, isRoot: true, hasAptGet: false })).toBe('missing');
  });

  it('finds it on PATH first, then where Debian puts it', () => {
    expect(pgbouncerPath(() => true, () => true)).toBe('pgbouncer');
    expect(pgbouncerPath((path) => path === DEBIAN_PGBOUNCER, () => false)).toBe(DEBIAN_PGBOUNCER);
    expect(pgbouncerPath(() => false, () => false)).toBeUndefined();
  });
});
