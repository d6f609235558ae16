// check:device on a machine without a usable NVIDIA GPU: one line saying so, a non-zero exit, nothing measured. The
// nvidia-smi it finds is controlled through PATH (none, or a stand-in that answers as a GPU-less machine does), so
// this holds on any machine, a GPU host included.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(tmpdir(), 'hdb-check-device-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the script with only `binDir` (and node's own folder) on PATH. */
function checkDevice(binDir: string) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'check-device.ts')], {
    cwd: ROOT,
    env: { HOME: scratch, PATH: [binDir, dirname(process.execPath)].join(':') },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: result.status, stdout: result.stdout, stderrLines: result.stderr.split('\n').filter((line) => line !== '') };
}

/** A stand-in nvidia-smi printing `output` and exiting with `code`. */
function fakeNvidiaSmi(name: string, output: string, code: number): string {
  const dir = join(scratch, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'nvidia-smi'), `#!/bin/sh\nprintf '%s' '${output}'\nexit ${code}\n`);
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  return dir;
}

describe('npm run check:device without a GPU', () => {
  it('says there is no nvidia-smi in one line and exits 1', () => {
    const run = checkDevice(join(scratch, 'empty'));
    expect(run.stderrLines).toEqual(['check:device: no NVIDIA GPU on this machine (nvidia-smi is not installed); run it on the GPU host']);
    expect(run.stdout).toBe('');
    expect(run.status).toBe(1);
  });

  it('passes on what nvidia-smi says when it finds no device', () => {
    const run = checkDevice(fakeNvidiaSmi('no-devices', 'No devices were found\n', 6));
    expect(run.stderrLines).toEqual(['check:device: no NVIDIA GPU on this machine (nvidia-smi failed: No devices were found); run it on the GPU host']);
    expect(run.status).toBe(1);
  });

  it('treats an empty GPU list as no GPU', () => {
    const run = checkDevice(fakeNvidiaSmi('empty-list', '', 0));
    expect(run.stderrLines).toEqual(['check:device: no NVIDIA GPU on this machine (nvidia-smi lists no GPU); run it on the GPU host']);
    expect(run.status).toBe(1);
  });
});
