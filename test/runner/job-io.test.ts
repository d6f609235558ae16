// From a contract job to the executor's input: every photo reaches the executor with the face box its owner gave, and
// a box is checked against the decoded (upright) pixels, since the edge saw only the header.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { JobRequest } from '../../contract/index.ts';
import { personalizeInput, precheckJob } from '../../gpu-runner/server/jobs/job-io.ts';
import { InvalidInputError } from '../../gpu-runner/server/jobs/executor.ts';
import { inlineSource, personalizationJob, testPhoto } from './support/jobs.ts';

type Personalization = Extract<JobRequest, { kind: 'personalization' }>;

const LIMITS = { maxBytes: 1 << 20, timeoutMs: 5_000, maxImagePixels: 1 << 22 };

async function jobWith(images: { bytes: Uint8Array; width: number; height: number; contentType?: 'image/png' | 'image/jpeg'; faceBox?: object }[]) {
  const job = (await personalizationJob({ eventsUrl: 'http://127.0.0.1:9/events' })) as Personalization;
  job.payload.images = images.map((image) => ({
    content_type: image.contentType ?? 'image/png',
    width: image.width,
    height: image.height,
    source: inlineSource(image.bytes),
    ...(image.faceBox ? { face_box: image.faceBox as never } : {}),
  }));
  return job;
}

/** A JPEG stored 128×96 with EXIF orientation 6: shown (and decoded) as 96×128. */
async function sidewaysJpeg(): Promise<Uint8Array> {
  const raw = Buffer.alloc(128 * 96 * 3, 128);
  return new Uint8Array(await sharp(raw, { raw: { width: 128, height: 96, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toBuffer());
}

describe('job input: photos and face boxes', () => {
  it('passes every photo in order, each with its face box (none where none was given)', async () => {
    const box = { x: 10, y: 12, width: 40, height: 50 };
    const job = await jobWith([
      { bytes: await testPhoto(96, 96), width: 96, height: 96, faceBox: box },
      { bytes: await testPhoto(80, 64), width: 80, height: 64 },
    ]);
    const prepared = await precheckJob(job, LIMITS);
    const input = await personalizeInput(job, LIMITS, prepared);
    expect(input.images.map((image) => [image.width, image.height, image.faceBox])).toEqual([
      [96, 96, box],
      [80, 64, undefined],
    ]);
  });

  it('refuses a box outside the decoded image, naming the image, before and at execution', async () => {
    const job = await jobWith([
      { bytes: await testPhoto(96, 96), width: 96, height: 96 },
      { bytes: await testPhoto(80, 64), width: 80, height: 64, faceBox: { x: 50, y: 0, width: 40, height: 20 } },
    ]);
    await expect(precheckJob(job, LIMITS)).rejects.toThrow(InvalidInputError);
    await expect(precheckJob(job, LIMITS)).rejects.toThrow(/images\[1\]: face_box .* does not lie inside the image, which is 80×64/);
    await expect(personalizeInput(job, LIMITS)).rejects.toThrow(/images\[1\]: face_box/);
  });

  it('checks the box against the upright pixels of a rotated JPEG (declared as its header says, stored 128×96)', async () => {
    const bytes = await sidewaysJpeg();
    const tall = { x: 0, y: 100, width: 96, height: 28 };
    const ok = await jobWith([{ bytes, width: 128, height: 96, contentType: 'image/jpeg', faceBox: tall }]);
    const input = await personalizeInput(ok, LIMITS, await precheckJob(ok, LIMITS));
    expect([input.images[0]!.width, input.images[0]!.height, input.images[0]!.faceBox]).toEqual([96, 128, tall]);
    const wide = await jobWith([{ bytes, width: 128, height: 96, contentType: 'image/jpeg', faceBox: { x: 0, y: 0, width: 120, height: 10 } }]);
    await expect(precheckJob(wide, LIMITS)).rejects.toThrow(/which is 96×128 upright/);
  });
});
