// Phase 1 from a folder of photos as a user brings it: rendered faces written as image files, subfolders per person,
// a caption, a file that is not an image and a caption without its identifier, all on the tiny model.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ensureTinyPack } from '../../pack/write-tiny-pack.ts';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_WORLD, encodePng, sampleAt } from '../../world/index.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import sharp from 'sharp';
import { FaceDetector } from '../face/detector.ts';
import { encoderPixels } from './train-hypernetwork.ts';
import { CONTRAST_DETECTOR_BOX, contrastFaceDetector } from '../testing/contrast-face-detector.ts';
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

  it('with a face detector: skips photos without a face, lists them with the score, crops inputs around the face', async () => {
    const dir = join(root, 'checked');
    mkdirSync(join(dir, 'dana'), { recursive: true });
    writeFileSync(join(dir, 'dana', 'face.png'), await png(5));
    // A photo of a wall: decodes fine, but has no face in it.
    writeFileSync(join(dir, 'dana', 'wall.png'), await sharp({ create: { width: 48, height: 40, channels: 3, background: { r: 120, g: 130, b: 140 } } }).png().toBuffer());
    writeFileSync(join(dir, 'wall-only.png'), await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 20, g: 20, b: 20 } } }).png().toBuffer());
    const detector = await FaceDetector.open(contrastFaceDetector(40, 30), { width: 40, height: 30 });
    try {
      const unchecked = await readFaceFolder(dir, { identifier: 'sks' });
      expect(unchecked.faceCheck).toEqual({ detector: false, minScore: null });
      expect(unchecked.people.flatMap((p) => p.photos.map((f) => f.file)).sort()).toEqual([join('dana', 'face.png'), join('dana', 'wall.png'), 'wall-only.png']);

      const folder = await readFaceFolder(dir, { identifier: 'sks', detector });
      expect(folder.faceCheck).toEqual({ detector: true, minScore: 0.7 });
      expect(folder.people.map((p) => [p.id, p.photos.map((f) => f.file)])).toEqual([['dana', [join('dana', 'face.png')]]]);
      expect(folder.skipped.map((s) => s.file).sort()).toEqual([join('dana', 'wall.png'), 'wall-only.png']);
      for (const skip of folder.skipped) expect(skip.reason).toMatch(/^no face found: the face detector's best score is 0\.1\d\d, below 0\.7$/);
      const [photo] = folder.people[0]!.photos;
      const { width, height } = sampleAt(DEFAULT_WORLD, 'train', 5).image;
      const [x1, y1, x2, y2] = CONTRAST_DETECTOR_BOX;
      expect(photo!.face!.score).toBeGreaterThan(0.9);
      expect(photo!.face!.box.x).toBeCloseTo(x1 * width, 4);
      expect(photo!.face!.box.y).toBeCloseTo(y1 * height, 4);
      expect(photo!.face!.box.width).toBeCloseTo((x2 - x1) * width, 4);
      expect(photo!.face!.box.height).toBeCloseTo((y2 - y1) * height, 4);
      // The input the encoder reads is the crop around that face, not the centre crop.
      const [subject] = await folderPhase1Subjects(model, folder.people);
      expect(subject!.pixels).toEqual(await encoderPixels(model, photo!.bytes, photo!.face!.box));
      expect(subject!.pixels).not.toEqual(await encoderPixels(model, photo!.bytes));

      // A threshold below the walls' score (≈ 0.12) lets them through; a bad threshold is refused.
      const lenient = await readFaceFolder(dir, { identifier: 'sks', detector, minFaceScore: 0.05 });
      expect(lenient.skipped).toEqual([]);
      expect(lenient.people.flatMap((p) => p.photos.map((f) => f.file)).sort()).toEqual([join('dana', 'face.png'), join('dana', 'wall.png'), 'wall-only.png']);
      await expect(readFaceFolder(dir, { identifier: 'sks', detector, minFaceScore: 1.5 })).rejects.toThrow(/minimum face score must be in \[0, 1\]/);
    } finally {
      await detector.close();
    }
  });

  it('refuses a detector without the UltraFace signature, naming what the model has', async () => {
    const notADetector = contrastFaceDetector(16, 16);
    // The same model with its outputs renamed is no longer in the convention.
    const { Graph, serializeModel, mul } = await import('../../onnx/index.ts');
    const g = new Graph('not_a_detector');
    g.output(mul(g.input('pixels', 'float32', [1, 3, 16, 16]), 2), 'logits');
    await expect(FaceDetector.open(serializeModel(g))).rejects.toThrow(/expected one input and outputs "scores" \[1, N, 2\] and "boxes" \[1, N, 4\].*inputs \[pixels\] and outputs \[logits\]/);
    await expect(FaceDetector.open(notADetector, { width: 4, height: 16 })).rejects.toThrow(/input size must be whole pixels in 8\.\.4096, got 4×16/);
  });

  it('`phase1 train --faces DIR --face-detector FILE` trains on the faces and reports the photos without one', async () => {
    const dir = join(root, 'cli');
    mkdirSync(join(dir, 'ann'), { recursive: true });
    mkdirSync(join(dir, 'ben'), { recursive: true });
    writeFileSync(join(dir, 'ann', 'a.png'), await png(6));
    writeFileSync(join(dir, 'ann', 'b.png'), await png(7));
    writeFileSync(join(dir, 'ben', 'c.png'), await png(8));
    writeFileSync(join(dir, 'ben', 'wall.png'), await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 200, g: 190, b: 180 } } }).png().toBuffer());
    const detectorFile = join(root, 'detector.onnx');
    writeFileSync(detectorFile, contrastFaceDetector(40, 30));
    const out = join(root, 'cli-out', 'hypernetwork.safetensors');
    const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'commands', 'phase1.ts');
    const args = ['--import', 'tsx', cli, 'train', '--pack', ensureTinyPack(), '--faces', dir, '--face-detector', detectorFile, '--face-detector-size', '40x30', '--validation', '1', '--steps', '2', '--batch', '2', '--validation-every', '2', '--progress', 'json', '--out', out];
    const { stderr } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1 << 26 });
    expect(stderr).toContain(`skipped ${join('ben', 'wall.png')}: no face found`);
    expect(existsSync(out)).toBe(true);
    const report = JSON.parse(readFileSync(`${out}.faces.json`, 'utf8'));
    expect(report.faceCheck).toEqual({ detector: true, minScore: 0.7 });
    expect(report.train).toEqual([{ id: 'ann', photos: [join('ann', 'a.png'), join('ann', 'b.png')] }]);
    expect(report.validation).toEqual([{ id: 'ben', photos: [join('ben', 'c.png')] }]);
    expect(report.skipped).toEqual([{ file: join('ben', 'wall.png'), reason: expect.stringMatching(/^no face found/) }]);
    // The detector's options need the folder and each other, with a clear error.
    await expect(promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'train', '--pack', ensureTinyPack(), '--face-detector', detectorFile, '--steps', '1'])).rejects.toThrow(/check the photos of --faces DIR/);
    await expect(promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'train', '--pack', ensureTinyPack(), '--faces', dir, '--min-face-score', '0.5', '--steps', '1'])).rejects.toThrow(/need --face-detector FILE/);
  }, 180_000);
});
