// Phase 1 as runs on the tiny pack: pre-optimization per identity (loss falls on fixed draws, records and manifest,
// resume and shards, the process pool), hypernetwork steps lowering the training loss for β = 0 and β > 0, and the
// validation set held out. Tiny settings: a few identities, a few steps.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelPack } from '../../pack/model-pack.ts';
import { ensureTinyPack } from '../../pack/write-tiny-pack.ts';
import { claimRunFolder, MANIFEST_FILE, preOptimizeRun, writeManifest } from './manifest.ts';
import { preOptimizedPath, preOptimizeIdentities, readPreOptimized } from './pre-optimize.ts';
import { createProgress, progressLine } from './progress.ts';
import { preparePhase1Subject, trainHypernetwork } from './train-hypernetwork.ts';
import { assertHeldOut, worldIdentityImages } from '../../world/phase1-identities.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-phase1-run-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// Pinned to the random tiny pack: the default is the trained world pack once it is complete.
const pack = await loadModelPack(ensureTinyPack(), () => {});
const model = pack.model;
const identities = worldIdentityImages('train', 2);
const lidbDir = join(root, 'lidb');
/** Enough steps at the from-zero learning rate for the loss on fixed draws to fall clearly on the random tiny pack. */
const PRE_OPTIMIZE = { steps: 12, evaluationSamples: 4, identifier: 'sks' } as const;

describe('phase 1 runs', () => {
  it('pre-optimizes each identity to a lower diffusion loss, records it, and resumes without redoing finished identities', async () => {
    claimRunFolder(lidbDir, preOptimizeRun(model, PRE_OPTIMIZE));
    const shard0 = await preOptimizeIdentities(model, identities, { outDir: lidbDir, ...PRE_OPTIMIZE, shard: { index: 0, count: 2 } });
    expect(shard0.written).toEqual([identities[0]!.id]);
    const firstFile = preOptimizedPath(lidbDir, identities[0]!.id);
    const firstWritten = statSync(firstFile).mtimeMs;

    const all = await preOptimizeIdentities(model, identities, { outDir: lidbDir, ...PRE_OPTIMIZE });
    expect(all.skipped).toEqual([identities[0]!.id]);
    expect(all.written).toEqual([identities[1]!.id]);
    expect(statSync(firstFile).mtimeMs).toBe(firstWritten);

    const manifest = writeManifest(lidbDir);
    expect(manifest.identities.map((r) => r.id)).toEqual(identities.map((i) => i.id));
    for (const record of manifest.identities) expect(record.lossAfter!).toBeLessThan(record.lossBefore!);
    expect(manifest.summary.improved).toBe(2);
    expect(JSON.parse(readFileSync(join(lidbDir, MANIFEST_FILE), 'utf8')).run.settings).toEqual(PRE_OPTIMIZE);
    expect(readPreOptimized(model, lidbDir, identities[1]!.id).meta.steps).toBe(PRE_OPTIMIZE.steps);
    expect(() => claimRunFolder(lidbDir, preOptimizeRun(model, { ...PRE_OPTIMIZE, steps: 13 }))).toThrow(/other settings[\s\S]*settings\.steps: 12 before, 13 now/);
  });

  it('lowers the training loss on fixed draws over a few hypernetwork steps, with β = 0 and with β > 0', async () => {
    const subjects = await Promise.all(
      identities.map((identity) => preparePhase1Subject(model, identity.image, { target: readPreOptimized(model, lidbDir, identity.id).lidb! })),
    );
    // The training subjects passed as the "validation" set measure the diffusion loss on fixed draws after each step
    // (the per-step training losses use fresh timesteps and noise, too noisy to compare over a few steps).
    for (const beta of [0, 1]) {
      const l2: number[] = [];
      const run = await trainHypernetwork(model, subjects, subjects, {
        steps: 8,
        batchSize: 2,
        beta,
        learningRate: 3e-3,
        identifier: PRE_OPTIMIZE.identifier,
        validationEvery: 1,
        onProgress: (p) => p.l2Loss !== undefined && l2.push(p.l2Loss),
      });
      const fixed = run.validation.map((v) => v.loss);
      expect(fixed).toHaveLength(8);
      expect(fixed[7]!, `β = ${beta}: ${fixed.join(', ')}`).toBeLessThan(fixed[0]!);
      if (beta > 0) expect(l2[7]!).toBeLessThan(l2[0]!);
    }
  });

  it('measures validation on held-out identities only', () => {
    const validation = worldIdentityImages('validation', 3);
    expect(() => assertHeldOut(identities, validation)).not.toThrow();
    expect(validation.some((v) => identities.some((t) => t.id === v.id))).toBe(false);
    expect(() => assertHeldOut(identities, [validation[0]!, identities[1]!])).toThrow(/held out.*world-7-1/);
  });

  it('pre-optimizes across a pool of processes into one manifest', async () => {
    const outDir = join(root, 'pool');
    const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'commands', 'phase1.ts');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', cli, 'pre-optimize', '--out', outDir, '--identities', '2', '--steps', '2', '--eval-samples', '0', '--workers', '2', '--progress', 'json'],
      { cwd: join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..') },
    );
    const events = stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: string; shard?: number; done?: number; total?: number });
    expect(new Set(events.filter((e) => e.event === 'identity').map((e) => e.shard))).toEqual(new Set([0, 1]));
    expect(events.filter((e) => e.event === 'progress').at(-1)).toMatchObject({ done: 2, total: 2 });
    expect(JSON.parse(readFileSync(join(outDir, MANIFEST_FILE), 'utf8')).summary.count).toBe(2);
  });

  it('shows progress as one line on a terminal and as JSON lines elsewhere', () => {
    const written: string[] = [];
    const out = new Writable({ write: (chunk, _encoding, done) => (written.push(String(chunk)), done()) });
    let clock = 0;
    const json = createProgress('pre-optimize', { out, mode: 'json', now: () => clock });
    clock = 2000;
    json.update({ done: 1, total: 4, fields: { loss: 0.5 } });
    expect(JSON.parse(written[0]!)).toEqual({ event: 'progress', label: 'pre-optimize', done: 1, total: 4, loss: 0.5, elapsedSeconds: 2 });
    written.length = 0;
    const tty = createProgress('pre-optimize', { out, mode: 'tty', now: () => clock });
    tty.update({ done: 1, total: 4 });
    tty.update({ done: 2, total: 4 });
    expect(written.join('')).not.toContain('\n');
    expect(written.at(-1)).toContain('2/4');
    expect(progressLine('x', { done: 2, total: 4, fields: { loss: 0.25 } }, 10)).toMatch(/^x {2}\[#{12}\.{12}\] {2}2\/4 {2}50% {2}loss 0\.2500 {2}elapsed 10s {2}eta 10s$/);
  });
});
