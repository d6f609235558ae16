// Face boxes: an optional box per uploaded photo (`face_boxes`, one entry per file), checked against the photo as
// shown (EXIF orientation applied), kept with the photo, and sent to the runner with it (docs/api.md).
import { beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, expectError, type TestTenant } from './helpers.ts';
import { file, form, jpeg, png } from './images.ts';
import { waitForRunnerJob } from './runner-double.ts';

type Box = { x: number; y: number; width: number; height: number };
type Subject = { id: string; images: { id: string; width: number; height: number; face_box: Box | null }[] };

let owner: TestTenant;

beforeAll(async () => {
  owner = await createTenant('face boxes');
});

function upload(files: File[], faceBoxes?: unknown) {
  const fields: Record<string, string> = faceBoxes === undefined ? {} : { face_boxes: typeof faceBoxes === 'string' ? faceBoxes : JSON.stringify(faceBoxes) };
  return call('/v1/subjects', { method: 'POST', key: owner.key, body: form(files, fields) });
}

const BOX: Box = { x: 100, y: 40, width: 200, height: 240 };

describe('face boxes', () => {
  it('keeps one box per photo (or none) in upload order, shows it, and sends it to the runner with its photo', async () => {
    const res = await upload([file(png(512, 384), 'a.png'), file(png(256, 256), 'b.png')], [BOX, null]);
    expect(res.status).toBe(201);
    const subject = (await res.json()) as Subject;
    expect(subject.images.map((i) => i.face_box)).toEqual([BOX, null]);
    const got = (await (await call(`/v1/subjects/${subject.id}`, { key: owner.key })).json()) as Subject;
    expect(got.images.map((i) => i.face_box)).toEqual([BOX, null]);

    const added = await call(`/v1/subjects/${subject.id}/images`, {
      method: 'POST',
      key: owner.key,
      body: form([file(png(300, 300), 'c.png')], { face_boxes: JSON.stringify([{ x: 0, y: 0, width: 300, height: 300 }]) }),
    });
    expect(added.status).toBe(200);
    expect(((await added.json()) as Subject).images.map((i) => i.face_box)).toEqual([BOX, null, { x: 0, y: 0, width: 300, height: 300 }]);

    const created = await call('/v1/personalizations', { method: 'POST', key: owner.key, json: { subject_id: subject.id, finetune: { steps: 2 } } });
    expect(created.status).toBe(202);
    const received = await waitForRunnerJob(((await created.json()) as { id: string }).id);
    if (received.request.kind !== 'personalization') throw new Error('expected a personalization');
    const images = received.request.payload.images;
    expect(images.map((i) => [i.width, i.height, i.face_box])).toEqual([
      [512, 384, BOX],
      [256, 256, undefined],
      [300, 300, { x: 0, y: 0, width: 300, height: 300 }],
    ]);
  });

  it('without `face_boxes` stores no box', async () => {
    const subject = (await (await upload([file(png(128, 128), 'a.png')])).json()) as Subject;
    expect(subject.images[0]!.face_box).toBeNull();
  });

  it('refuses boxes that are not JSON, miscounted, of no size, or outside the photo, storing nothing', async () => {
    const count = async () => ((await (await call('/v1/subjects?limit=100', { key: owner.key })).json()) as { data: Subject[] }).data.length;
    const before = await count();
    const two = () => [file(png(512, 384), 'a.png'), file(png(256, 256), 'b.png')];
    await expectError(await upload(two(), '{not json'), 422, 'invalid_face_box');
    expect((await expectError(await upload(two(), [BOX]), 422, 'invalid_face_box')).error.message).toContain('1 entries for 2 images');
    await expectError(await upload(two(), [{ ...BOX, width: 0 }, null]), 422, 'invalid_face_box');
    await expectError(await upload(two(), [{ ...BOX, x: -1 }, null]), 422, 'invalid_face_box');
    await expectError(await upload(two(), [{ x: 1, y: 2, width: 3 }, null]), 422, 'invalid_face_box');
    await expectError(await upload(two(), [{ ...BOX, depth: 1 }, null]), 422, 'invalid_face_box');
    const outside = await expectError(await upload(two(), [null, { x: 200, y: 0, width: 57, height: 100 }]), 422, 'face_box_outside_image');
    expect(outside.error.message).toContain('b.png');
    expect(outside.error.details).toMatchObject({ file: 'b.png', width: 256, height: 256 });
    expect(await count()).toBe(before);
  });

  it('checks a box against the photo as shown: an EXIF rotation by 90° swaps width and height', async () => {
    // Header 640×480, orientation 6 (rotate 90° clockwise to show): the runner decodes it as 480×640.
    const sideways = () => file(jpeg(640, 480, 6), 'phone.jpg');
    const belowFold = { x: 0, y: 500, width: 400, height: 120 };
    const accepted = await upload([sideways()], [belowFold]);
    expect(accepted.status).toBe(201);
    expect(((await accepted.json()) as Subject).images[0]!.face_box).toEqual(belowFold);
    const wide = { x: 300, y: 0, width: 300, height: 200 };
    expect((await expectError(await upload([sideways()], [wide]), 422, 'face_box_outside_image')).error.details).toMatchObject({ width: 480, height: 640 });
    // Without a rotation the same box fits.
    expect((await upload([file(jpeg(640, 480, 1), 'upright.jpg')], [wide])).status).toBe(201);
  });
});
