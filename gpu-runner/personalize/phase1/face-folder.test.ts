// Phase 1 from a folder of photos as a user brings it: rendered faces written as image files, subfolders per person,
// a caption, a file that is not an image and a caption without its identifier, all on the tiny model.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_WORLD, encodePng, sampleAt } from '../../world/index.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import { folderPhase1Subjects, readFaceFolder } from './face-folder.ts';
import { trainHypernetwork } from './train-hypernetwork.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-faces-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const model = tinyPersonalizationModel({ hypernetworkSeed: 2 });
const png = async (index: number) => encodePng(sampleAt(DEFAULT_WORLD, 'train', index).image);

describe('a folder of face photos', () => {
  it('reads people from subfolders and loose photos, captions beside photos, and reports what it skipped', async () => {
    mkdirSync(join(root, 'Ada Lovelace'));
    mkdirSync(join(root, 'bob'));
    writeFileSync(join(root, 'Ada Lovelace', 'IMG 001.PNG'), await png(0));
    writeFileSync(join(root, 'Ada Lovelace', 'second.png'), await png(1));
    writeFileSync(join(root, 'Ada Lovelace', 'second.png.txt'), 'a sketch of a sks face on a red background\n');
    writeFileSync(join(root, 'bob', 'me.jpg'), await png(2));
    writeFileSync(join(root, 'bob', 'notes.pdf'), 'not an image at all');
    writeFileSync(join(root, 'bob', 'other.png'), await png(3));
    writeFileSync(join(root, 'bob', 'other.png.txt'), 'a photo of my friend');
    writeFileSync(join(root, 'carol.png'), await png(4));
    writeFileSync(join(root, 'stray.txt'), 'a sks face');
    const folder = await readFaceFolder(root, { identifier: 'sks' });
    expect(folder.people.map((p) => [p.id, p.photos.map((f) => f.file)])).toEqual([
      ['Ada_Lovelace', [join('Ada Lovelace', 'IMG 001.PNG'), join('Ada Lovelace', 'second.png')]],
      ['bob', [join('bob', 'me.jpg')]],
      ['carol', ['carol.png']],
    ]);
    expect(folder.people[0]!.photos.map((f) => f.caption)).toEqual(['a sks face', 'a sketch of a sks face on a red background']);
    expect(folder.skipped.map((s) => s.file).sort()).toEqual([join('bob', 'notes.pdf'), join('bob', 'other.png'), 'stray.txt']);
    expect(folder.skipped.find((s) => s.file === join('bob', 'other.png'))!.reason).toMatch(/identifier "sks"/);
    expect(folder.skipped.find((s) => s.file === join('bob', 'notes.pdf'))!.reason).toMatch(/face image/);
  });

  it('trains the hypernetwork on its people: each photo an input, the person\'s other photos its views', async () => {
    const folder = await readFaceFolder(root, { identifier: 'sks' });
    const subjects = await folderPhase1Subjects(model, folder.people.slice(0, 2));
    expect(subjects).toHaveLength(3);
    expect(subjects.map((s) => s.views?.length)).toEqual([1, 1, 1]);
    // Ada's first photo fits her second (its own caption), and the other way round.
    expect(subjects[0]!.views![0]!.promptIds).toEqual(model.tokenizer.tokenize('a sketch of a sks face on a red background'));
    expect(subjects[1]!.views![0]!.promptIds).toEqual(model.tokenizer.tokenize('a sks face'));
    const validation = await folderPhase1Subjects(model, folder.people.slice(2));
    const result = await trainHypernetwork(model, subjects, validation, { steps: 3, batchSize: 2, learningRate: 1e-3, validationEvery: 3 });
    expect(result.losses.every(Number.isFinite)).toBe(true);
    expect(result.validation).toHaveLength(1);
  });
});
