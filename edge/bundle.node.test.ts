// The production bundle: `wrangler deploy --dry-run` must bundle the edge offline, and nothing from the runner
// (gpu-runner/, onnxruntime) may end up in it (docs/architecture.md: the edge bundle never imports the runner). The
// production environment of wrangler.toml must bundle the same way, bind everything the Worker binds locally plus
// Hyperdrive, and have each of its placeholders explained in docs/deploy.md.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `wrangler deploy --dry-run` (for `env` when given) into a fresh folder; the caller removes `out`. */
async function dryRun(env?: string): Promise<{ status: number | null; output: string; out: string }> {
  const out = await mkdtemp(join(tmpdir(), 'hdb-bundle-'));
  const run = spawnSync(join(root, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', ...(env ? ['--env', env] : []), '--outdir', out], {
    cwd: root,
    encoding: 'utf8',
    // No telemetry, no update check: the bundle step must not need the network.
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG: 'log', NO_UPDATE_NOTIFIER: '1' },
  });
  return { status: run.status, output: `${run.stdout}\n${run.stderr}`, out };
}

/** The binding names of wrangler's dry-run table ("env.NAME (resource) Kind"), each with its kind. */
function bindings(output: string): Record<string, string> {
  const rows = [...output.matchAll(/^env\.(\w+) \(.*?\)\s+(.+?)\s*$/gm)];
  return Object.fromEntries(rows.map((row) => [row[1]!, row[2]!]));
}

describe('edge bundle', () => {
  it('bundles offline with wrangler and contains nothing from gpu-runner/', async () => {
    const { status, output, out } = await dryRun();
    try {
      expect(status, output).toBe(0);
      const map = JSON.parse(await readFile(join(out, 'index.js.map'), 'utf8')) as { sources: string[] };
      expect(map.sources.some((s) => s.endsWith('edge/app.ts'))).toBe(true);
      // The contract sits outside edge/ (both sides import it) and must still be bundled.
      expect(map.sources.some((s) => s.endsWith('contract/signing.ts'))).toBe(true);
      expect(map.sources.filter((s) => /gpu-runner\/|onnxruntime|sharp/.test(s))).toEqual([]);
      const code = await readFile(join(out, 'index.js'), 'utf8');
      expect(code).not.toMatch(/onnxruntime/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('bundles the production environment offline, binding what local development binds plus Hyperdrive', async () => {
    const local = await dryRun();
    const production = await dryRun('production');
    try {
      expect(production.status, production.output).toBe(0);
      expect(bindings(production.output)).toEqual({ ...bindings(local.output), HYPERDRIVE: 'Hyperdrive Config' });
      const map = JSON.parse(await readFile(join(production.out, 'index.js.map'), 'utf8')) as { sources: string[] };
      expect(map.sources.filter((s) => /gpu-runner\/|onnxruntime|sharp/.test(s))).toEqual([]);
    } finally {
      await Promise.all([rm(local.out, { recursive: true, force: true }), rm(production.out, { recursive: true, force: true })]);
    }
  });

  it('explains every placeholder of the production environment in docs/deploy.md', async () => {
    const config = await readFile(join(root, 'wrangler.toml'), 'utf8');
    const production = config.slice(config.indexOf('[env.production]'));
    const placeholders = [...new Set([...production.matchAll(/<([A-Z][A-Z0-9_]*)>/g)].map((m) => m[1]!))];
    expect(placeholders.length).toBeGreaterThan(0);
    const deploy = await readFile(join(root, 'docs', 'deploy.md'), 'utf8');
    expect(placeholders.filter((name) => !deploy.includes(`<${name}>`))).toEqual([]);
  });
});
