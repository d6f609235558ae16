import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDiffusersFolder } from '../diffusion/reference-folder.ts';
import { BUNDLED_CLIP_VOCAB } from '../diffusion/tokenizer/clip-tokenizer.ts';
import { loadSafetensors, writeSafetensors } from '../io/safetensors.ts';
import type { ParityCheck, ParityResult } from './check.ts';
import { REPOSITORY_ROOT, referencePath } from '../../test/fixtures/reference-dir.ts';
import { runParity } from './run.ts';

const scratch = mkdtempSync(join(tmpdir(), 'parity-cli-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const RESULT_KEYS = ['case', 'component', 'maxAbsErr', 'ok', 'tolerance'];

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join('gpu-runner', 'commands', 'sd15.ts'), ...args], {
    cwd: REPOSITORY_ROOT,
    encoding: 'utf8',
  });
  const lines = run.stdout.split('\n').filter((line) => line.length > 0);
  return { status: run.status, lines: lines.map((line) => JSON.parse(line) as ParityResult), stderr: run.stderr };
}

/** A fixture folder holding only the scheduler files (so only the scheduler check applies). */
function schedulerFixture(name: string): string {
  const dir = join(scratch, name);
  cpSync(referencePath('sd15-tiny', 'schedulers'), join(dir, 'schedulers'), { recursive: true });
  return dir;
}

describe('gpu-runner/commands/sd15.ts parity', () => {
  it('prints one JSON line per check and exits 0 when all pass', () => {
    const { status, lines } = cli('parity', schedulerFixture('clean'));
    expect(status).toBe(0);
    expect(lines.length).toBeGreaterThan(50);
    for (const line of lines) {
      expect(Object.keys(line).sort()).toEqual(RESULT_KEYS);
      expect(line.component).toBe('scheduler');
      expect(line.ok).toBe(true);
    }
  });

  it('exits non-zero and flags the case when a reference tensor is off', () => {
    const dir = schedulerFixture('tampered');
    const path = join(dir, 'schedulers', 'rollout_DDIMScheduler_5steps.safetensors');
    const { tensors, metadata } = loadSafetensors(path);
    const final = tensors.get('final_latents')!;
    (final.data as Float32Array)[7]! += 0.01;
    writeSafetensors(path, tensors, metadata);
    const { status, lines } = cli('parity', dir);
    expect(status).toBe(1);
    const failed = lines.filter((line) => !line.ok);
    expect(failed.map((line) => line.case)).toEqual(['rollout_DDIMScheduler_5steps.final_latents']);
    expect(failed[0]!.maxAbsErr).toBeGreaterThan(0.009);
  });

  it('exits non-zero when no check applies to the folder', () => {
    const { status, stderr } = cli('parity', scratch);
    expect(status).toBe(1);
    expect(stderr).toMatch(/no check applies/);
  });

  it('tokenize prints the 77 ids', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', join('gpu-runner', 'commands', 'sd15.ts'), 'tokenize', BUNDLED_CLIP_VOCAB, 'a photo of sks face'],
      { cwd: REPOSITORY_ROOT, encoding: 'utf8' },
    );
    expect(run.status).toBe(0);
    const ids = JSON.parse(run.stdout) as number[];
    expect(ids.slice(0, 8)).toEqual([49406, 320, 1125, 539, 48136, 1710, 49407, 49407]);
    expect(ids).toHaveLength(77);
  });
});

describe('gpu-runner/commands/sd15.ts generate', () => {
  it('writes one PNG per image of the batch, named by seed', async () => {
    const root = writeDiffusersFolder(referencePath('sd15-tiny'), join(scratch, 'sd-folder'));
    const out = join(scratch, 'img');
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', join('gpu-runner', 'commands', 'sd15.ts'), 'generate', root, 'a photo of sks face', '--steps', '3', '--width', '64', '--height', '32', '--batch', '2', '--seed', '11', '--out', out],
      { cwd: REPOSITORY_ROOT, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    const written = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { path: string; seed: number });
    expect(written.map((w) => w.seed)).toEqual([11, 12]);
    const meta = await sharp(readFileSync(written[1]!.path)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 64, 32]);
  });
});

describe('runParity', () => {
  it('turns a check that throws into a failed result instead of aborting the run', async () => {
    const broken: ParityCheck = {
      component: 'broken',
      appliesTo: () => true,
      run: () => {
        throw new Error('weights missing');
      },
    };
    const passing: ParityCheck = {
      component: 'fine',
      appliesTo: () => true,
      run: () => [{ component: 'fine', case: 'c', maxAbsErr: 0, tolerance: 0, ok: true }],
    };
    const results = await runParity(scratch, () => {}, [broken, passing]);
    expect(results.map((r) => [r.component, r.ok])).toEqual([
      ['broken', false],
      ['fine', true],
    ]);
    expect(results[0]!.error).toBe('weights missing');
  });
});
