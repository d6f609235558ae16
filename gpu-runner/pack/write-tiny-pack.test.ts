import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from '../diffusion/tokenizer/clip-tokenizer.ts';
import { loadBpeVocab } from '../diffusion/tokenizer/bpe-vocab.ts';
import { openDiffusersFolder } from '../models/checkpoint/diffusers-folder.ts';
import { loadScheduler } from '../diffusion/schedulers/index.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { ensureTinyPack, PACK_HYPERNETWORK_FILE, writeTinyPack } from './write-tiny-pack.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-pack-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('the tiny model pack', () => {
  const dir = join(root, 'a');
  const summary = writeTinyPack(dir, 0);

  it('is a diffusers folder whose checkpoints match the configs name for name and shape for shape', () => {
    const folder = openDiffusersFolder(dir);
    expect(folder.unet.plan).toBeDefined();
    expect(folder.textEncoder.config.vocabSize).toBe(49408);
    expect(summary.bytes.unet).toBeGreaterThan(1_000_000);
  });

  it('ships the CLIP vocabulary as vocab.json + merges.txt that tokenizes like the bundled openai file', () => {
    const fromPack = new ClipTokenizer(loadBpeVocab(join(dir, 'tokenizer')));
    const bundled = new ClipTokenizer(loadBpeVocab(BUNDLED_CLIP_VOCAB));
    const prompt = 'A Pixar character of a sks face, wearing a hat';
    expect(fromPack.tokenize(prompt)).toEqual(bundled.tokenize(prompt));
    expect(fromPack.tokenize(prompt)).toHaveLength(77);
  });

  it('ships an untrained hypernetwork checkpoint covering every adapted layer', () => {
    const { header, tensors } = parseSafetensors(readFileSync(join(dir, PACK_HYPERNETWORK_FILE)));
    expect(Number(header.metadata.layer_count)).toBeGreaterThan(0);
    expect(tensors.size).toBeGreaterThan(0);
  });

  it('ensureTinyPack keeps a pack that is in place and fills a missing one', () => {
    const before = digest(join(dir, 'unet', 'diffusion_pytorch_model.safetensors'));
    expect(ensureTinyPack(dir)).toBe(dir);
    expect(digest(join(dir, 'unet', 'diffusion_pytorch_model.safetensors'))).toBe(before);
    const fresh = join(root, 'fresh');
    ensureTinyPack(fresh);
    expect(digest(join(fresh, 'unet', 'diffusion_pytorch_model.safetensors'))).toBe(before);
  });

  it('ships SD 1.5 scheduler settings that load', () => {
    const scheduler = loadScheduler(join(dir, 'scheduler', 'scheduler_config.json'));
    expect(scheduler).toBeDefined();
  });

  it('is deterministic: the same seed writes byte-identical weights, another seed different ones', () => {
    const again = join(root, 'b');
    writeTinyPack(again, 0);
    const other = join(root, 'c');
    writeTinyPack(other, 1);
    const file = join('unet', 'diffusion_pytorch_model.safetensors');
    expect(digest(join(again, file))).toBe(digest(join(dir, file)));
    expect(digest(join(other, file))).not.toBe(digest(join(dir, file)));
  });
});
