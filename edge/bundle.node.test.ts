// The production bundle: `wrangler deploy --dry-run` must bundle the edge offline, and nothing from the runner
// (gpu-runner/, onnxruntime) may end up in it (docs/architecture.md: the edge bundle never imports the runner).
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('edge bundle', () => {
  it('bundles offline with wrangler and contains nothing from gpu-runner/', async () => {
    const out = await mkdtemp(join(tmpdir(), 'hdb-bundle-'));
    try {
      const run = spawnSync(join(root, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', out], {
        cwd: root,
        encoding: 'utf8',
        // No telemetry, no update check: the bundle step must not need the network.
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG: 'error', NO_UPDATE_NOTIFIER: '1' },
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
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
});
