import { describe, expect, it } from 'vitest';
import {
  BACKGROUNDS,
  DEFAULT_WORLD,
  EYE_CENTRES_X,
  EYE_COLOURS,
  EYE_Y,
  HAIR_COLOURS,
  IRIS_RADIUS,
  NO_NUISANCE,
  captionWithDescription,
  captionWithIdentifier,
  encodePng,
  identityIds,
  renderPhoto,
  renderSample,
  sampleAt,
  sampleIdentity,
  type Context,
  type Identity,
  type RgbImage,
} from './index.ts';
import sharp from 'sharp';

const SIZE = 64;
const COLOUR_TOLERANCE = 0.02;

function pixel(image: RgbImage, fx: number, fy: number): number[] {
  const x = Math.floor(fx * image.width);
  const y = Math.floor(fy * image.height);
  const o = (y * image.width + x) * 3;
  return [image.data[o]!, image.data[o + 1]!, image.data[o + 2]!];
}

/** Face space (x, y) ∈ [-1, 1]² → image fraction, for the unscaled renderer (face spans 80% of the frame). */
function at(x: number, y: number): [number, number] {
  return [(x * 0.8 + 1) / 2, (y * 0.8 + 1) / 2];
}

const identity: Identity = {
  id: 1,
  skin: 1,
  hairColour: 2,
  hairStyle: 'short',
  eyeColour: 1,
  faceShape: 'round',
  beard: 'none',
  mark: 'none',
};
const plain: Context = { background: 3, accessory: 'none', style: 'photo' };

describe('the face renderer', () => {
  it('paints the identity colours where the features are', () => {
    const image = renderPhoto(identity, plain, NO_NUISANCE, 128);
    const iris = pixel(image, ...at(EYE_CENTRES_X[0] + IRIS_RADIUS * 0.6, EYE_Y));
    EYE_COLOURS[1]!.value.forEach((c, i) => expect(iris[i]).toBeCloseTo(c, 1));
    const hair = pixel(image, ...at(0, -0.6));
    HAIR_COLOURS[2]!.value.forEach((c, i) => expect(Math.abs(hair[i]! - c)).toBeLessThan(COLOUR_TOLERANCE));
    const corner = pixel(image, 0.02, 0.02);
    BACKGROUNDS[3]!.value.forEach((c, i) => expect(Math.abs(corner[i]! - c)).toBeLessThan(COLOUR_TOLERANCE));
  });

  it('anti-aliases edges: some pixels mix two colours', () => {
    const image = renderPhoto(identity, plain, NO_NUISANCE, SIZE);
    const distinct = new Set<string>();
    for (let i = 0; i < image.data.length; i += 3) distinct.add(image.data.slice(i, i + 3).join(','));
    // Flat shapes alone give ~10 colours; blended edge pixels give many more.
    expect(distinct.size).toBeGreaterThan(50);
    for (const v of image.data) expect(v >= 0 && v <= 1).toBe(true);
  });

  it('lets the prompt put on a hat that hides the hair', () => {
    const withHat = renderPhoto(identity, { ...plain, accessory: 'hat' }, NO_NUISANCE, SIZE);
    const top = pixel(withHat, ...at(0, -0.7));
    expect(Math.max(...top)).toBeLessThan(0.2);
  });

  it('keeps the geometry under the sketch and pixel-art styles', () => {
    for (const style of ['sketch', 'pixel art'] as const) {
      const image = renderSample(identity, { ...plain, style }, NO_NUISANCE, SIZE);
      expect(image.width).toBe(SIZE);
      const photo = renderPhoto(identity, plain, NO_NUISANCE, SIZE);
      expect(image.data).not.toEqual(photo.data);
    }
  });

  it('encodes to a PNG that decodes back to the same size', async () => {
    const png = await encodePng(renderPhoto(identity, plain, NO_NUISANCE, 32));
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 32, 32]);
  });
});

describe('the world data set', () => {
  it('is reproducible: a sample is a pure function of (config, split, index)', () => {
    const a = sampleAt(DEFAULT_WORLD, 'train', 17);
    const b = sampleAt(DEFAULT_WORLD, 'train', 17);
    expect(a.caption).toBe(b.caption);
    expect(a.image.data).toEqual(b.image.data);
    expect(sampleIdentity(DEFAULT_WORLD.seed, 5)).toEqual(sampleIdentity(DEFAULT_WORLD.seed, 5));
  });

  it('splits by identity: no identity is in two splits', () => {
    const train = new Set(identityIds(DEFAULT_WORLD, 'train'));
    const validation = identityIds(DEFAULT_WORLD, 'validation');
    const test = identityIds(DEFAULT_WORLD, 'test');
    for (const id of [...validation, ...test]) expect(train.has(id)).toBe(false);
    expect(new Set([...validation, ...test]).size).toBe(validation.length + test.length);
    for (let i = 0; i < 20; i++) expect(test).toContain(sampleAt(DEFAULT_WORLD, 'test', i).identity.id);
  });

  it('captions name the identity in words, or by the identifier token', () => {
    const words = captionWithDescription(identity, { ...plain, accessory: 'hat', style: 'sketch' });
    expect(words).toBe(
      'a sketch of a face with light skin, short red hair, blue eyes, a round face shape, on a blue background, wearing a hat',
    );
    expect(captionWithIdentifier('sks', plain)).toBe('a photo of a sks face, on a blue background');
    const captions = Array.from({ length: 60 }, (_, i) => sampleAt({ ...DEFAULT_WORLD, size: 8 }, 'train', i).caption);
    expect(captions.some((c) => c.includes(' sks face'))).toBe(true);
    expect(captions.some((c) => c.includes('hair') || c.includes('bald'))).toBe(true);
  });
});
