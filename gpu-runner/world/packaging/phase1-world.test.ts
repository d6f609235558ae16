// Phase 1 on a world pack through its commands (`npm run train:preoptimize` / `train:hypernetwork`), on a stand-in
// (random UNet and text encoder of the world configs, the committed VAE) with tiny step counts: world TRAIN identities,
// one reference render each, the world's identifier; the hypernetwork written into the pack; a resume after that write
// continues the run (the hypernetwork is outside the pack's digest).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../../io/safetensors.ts';
import { PACK_HYPERNETWORK_FILE } from '../../pack/write-tiny-pack.ts';
import { loadModelPack } from '../../pack/model-pack.ts';
import { DEFAULT_WORLD, identityIds } from '../dataset.ts';
import { writeStandInPack } from './stand-in.ts';
import { WORLD_PACK_ID } from '../../pack/world-pack.ts';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'hdb-world-phase1-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(REPO_ROOT, 'gpu-runner', 'commands', 'phase1.ts');
async function phase1(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', CLI, ...args, '--progress', 'json'], { cwd: REPO_ROOT, maxBuffer: 1 << 24 });
  return stdout;
}
const events = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('phase 1 on a world pack', () => {
  const pack = writeStandInPack(join(root, 'pack'));
  const lidb = join(root, 'lidb');
  const checkpoint = join(root, 'trainer.ckpt.safetensors');
  const log = join(root, 'train.jsonl');
  const [first, second] = identityIds(DEFAULT_WORLD, 'train').map((id) => `world-${DEFAULT_WORLD.seed}-${id}`);

  it('pre-optimizes LiDB for world TRAIN identities with the world identifier, and a rerun redoes nothing', async () => {
    const out = events(await phase1('pre-optimize', '--pack', pack, '--out', lidb, '--identities', '2', '--steps', '2', '--eval-samples', '1'));
    expect(out.filter((e) => e.event === 'identity').map((e) => e.id)).toEqual([first, second]);
    const runFile = JSON.parse(readFileSync(join(lidb, 'run.json'), 'utf8')) as { baseModel: { id: string }; settings: { identifier: string } };
    expect(runFile.baseModel.id).toBe(WORLD_PACK_ID);
    expect(runFile.settings.identifier).toBe('sks');
    const written = statSync(join(lidb, `${first}.lidb.safetensors`)).mtimeMs;
    const again = events(await phase1('pre-optimize', '--pack', pack, '--out', lidb, '--identities', '2', '--steps', '2', '--eval-samples', '1'));
    expect(again.filter((e) => e.event === 'identity')).toEqual([]);
    expect(statSync(join(lidb, `${first}.lidb.safetensors`)).mtimeMs).toBe(written);
  }, 300_000);

  it('trains the hypernetwork into the pack (β = 1 to those weights), then resumes from its checkpoint to more steps', async () => {
    const common = ['train', '--pack', pack, '--lidb', lidb, '--identities', '2', '--validation', '1', '--beta', '1', '--batch', '2', '--checkpoint', checkpoint, '--checkpoint-every', '1', '--log', log];
    await phase1(...common, '--steps', '2');
    expect(existsSync(checkpoint)).toBe(true);
    expect(readSafetensorsHeader(join(pack, PACK_HYPERNETWORK_FILE)).metadata.steps).toBe('2');
    await phase1(...common, '--steps', '4', '--resume');
    const steps = readFileSync(log, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { step: number }).step);
    expect(steps).toEqual([1, 2, 3, 4]);
    const loaded = await loadModelPack(pack, () => {});
    expect(loaded.hypernetwork).toBe('checkpoint');
    expect(readSafetensorsHeader(join(pack, PACK_HYPERNETWORK_FILE)).metadata.steps).toBe('4');
  }, 300_000);
});
