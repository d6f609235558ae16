// Subjects: multipart uploads checked by magic bytes and header dimensions, stored in R2, scoped to their tenant.
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, expectError, type TestTenant } from './helpers.ts';
import { file, form, jpeg, png, webp } from './images.ts';

type Subject = { id: string; name: string; images: { id: string; content_type: string; width: number; height: number; byte_size: number; sha256: string }[] };

let owner: TestTenant;
let stranger: TestTenant;

beforeAll(async () => {
  owner = await createTenant('subjects owner');
  stranger = await createTenant('subjects stranger');
});

async function upload(files: File[], fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return call('/v1/subjects', { method: 'POST', key: owner.key, body: form(files, fields), headers });
}

describe('subjects', () => {
  it('accepts JPEG, PNG and WebP, identified by content not by name or declared type', async () => {
    const res = await upload(
      [file(jpeg(640, 480), 'a.jpg', 'image/jpeg'), file(png(512, 512), 'b.bin'), file(webp(300, 400), 'c.png', 'image/png')],
      { name: 'Grace' },
    );
    expect(res.status).toBe(201);
    const subject = (await res.json()) as Subject;
    expect(subject.name).toBe('Grace');
    expect(subject.images.map((i) => [i.content_type, i.width, i.height])).toEqual([
      ['image/jpeg', 640, 480],
      ['image/png', 512, 512],
      ['image/webp', 300, 400],
    ]);
    const image = subject.images[1]!;
    const bytes = await call(`/v1/subjects/${subject.id}/images/${image.id}`, { key: owner.key });
    expect(bytes.status).toBe(200);
    expect(bytes.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await bytes.arrayBuffer())).toEqual(png(512, 512));
    // Stored in R2 under the tenant's prefix.
    const listed = await (env as unknown as { BUCKET: R2Bucket }).BUCKET.list({ prefix: `tenants/${owner.id}/subjects/${subject.id}/` });
    expect(listed.objects).toHaveLength(3);
  });

  it('refuses fake, oversized, too small, too large and too many images', async () => {
    const fake = await upload([file(new TextEncoder().encode('GIF89a not really'), 'x.gif', 'image/png')]);
    expect((await expectError(fake, 415, 'unsupported_image')).error.message).toContain('x.gif');
    const truncatedJpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a]);
    await expectError(await upload([file(truncatedJpeg, 't.jpg')]), 415, 'unsupported_image');
    await expectError(await upload([file(png(32, 512), 'small.png')]), 422, 'image_dimensions');
    await expectError(await upload([file(png(5000, 512), 'huge.png')]), 422, 'image_dimensions');
    const big = await upload([file(png(512, 512, 10 * 1024 * 1024), 'big.png')]);
    expect((await expectError(big, 413, 'image_too_large')).error.details).toMatchObject({ file: 'big.png' });
    const eleven = Array.from({ length: 11 }, (_, i) => file(png(64, 64), `${i}.png`));
    await expectError(await upload(eleven), 422, 'too_many_images');
    await expectError(await upload([]), 422, 'invalid_request');
    await expectError(await call('/v1/subjects', { method: 'POST', key: owner.key, json: { images: [] } }), 415, 'unsupported_media_type');
  });

  it('adds images up to ten per subject', async () => {
    const created = (await (await upload(Array.from({ length: 8 }, (_, i) => file(png(64, 64), `${i}.png`)))).json()) as Subject;
    const two = await call(`/v1/subjects/${created.id}/images`, { method: 'POST', key: owner.key, body: form([file(png(64, 64), 'a.png'), file(png(64, 64), 'b.png')]) });
    expect(two.status).toBe(200);
    expect(((await two.json()) as Subject).images).toHaveLength(10);
    const more = await call(`/v1/subjects/${created.id}/images`, { method: 'POST', key: owner.key, body: form([file(png(64, 64), 'c.png')]) });
    await expectError(more, 422, 'too_many_images');
    const foreign = await call(`/v1/subjects/${created.id}/images`, { method: 'POST', key: stranger.key, body: form([file(png(64, 64), 'c.png')]) });
    await expectError(foreign, 404, 'not_found');
  });

  it("hides another tenant's subjects and images behind 404", async () => {
    const subject = (await (await upload([file(png(64, 64), 'a.png')])).json()) as Subject;
    await expectError(await call(`/v1/subjects/${subject.id}`, { key: stranger.key }), 404, 'not_found');
    await expectError(await call(`/v1/subjects/${subject.id}/images/${subject.images[0]!.id}`, { key: stranger.key }), 404, 'not_found');
    await expectError(await call(`/v1/subjects/${subject.id}`, { method: 'DELETE', key: stranger.key }), 404, 'not_found');
    const theirs = (await (await call('/v1/subjects', { key: stranger.key })).json()) as { data: Subject[] };
    expect(theirs.data.map((s) => s.id)).not.toContain(subject.id);
    await expectError(await call('/v1/subjects/sub_0000000000000000000000000000', { key: owner.key }), 404, 'not_found');
  });

  it('lists newest first with cursor pagination', async () => {
    const tenant = await createTenant('paging');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(png(64, 64), 'a.png')], { name: `s${i}` }) });
      ids.push(((await res.json()) as Subject).id);
    }
    const first = (await (await call('/v1/subjects?limit=2', { key: tenant.key })).json()) as { data: Subject[]; next_cursor: string };
    expect(first.data.map((s) => s.id)).toEqual([ids[2], ids[1]]);
    const second = (await (await call(`/v1/subjects?limit=2&cursor=${first.next_cursor}`, { key: tenant.key })).json()) as { data: Subject[]; next_cursor: string | null };
    expect(second.data.map((s) => s.id)).toEqual([ids[0]]);
    expect(second.next_cursor).toBeNull();
    await expectError(await call('/v1/subjects?cursor=garbage', { key: tenant.key }), 400, 'invalid_cursor');
    await expectError(await call('/v1/subjects?limit=1000', { key: tenant.key }), 422, 'invalid_request');
  });

  it('deletes a subject with its stored images', async () => {
    const subject = (await (await upload([file(png(64, 64), 'a.png')])).json()) as Subject;
    expect((await call(`/v1/subjects/${subject.id}`, { method: 'DELETE', key: owner.key })).status).toBe(204);
    await expectError(await call(`/v1/subjects/${subject.id}`, { key: owner.key }), 404, 'not_found');
    const listed = await (env as unknown as { BUCKET: R2Bucket }).BUCKET.list({ prefix: `tenants/${owner.id}/subjects/${subject.id}/` });
    expect(listed.objects).toHaveLength(0);
  });

  it('replays an idempotent upload instead of creating a second subject', async () => {
    const headers = { 'idempotency-key': `upload-${crypto.randomUUID()}` };
    const body = form([file(png(64, 64), 'a.png')], { name: 'same' });
    const first = await call('/v1/subjects', { method: 'POST', key: owner.key, body, headers });
    const again = await call('/v1/subjects', { method: 'POST', key: owner.key, body: form([file(png(64, 64), 'a.png')], { name: 'same' }), headers });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as Subject).id).toBe(((await first.json()) as Subject).id);
  });
});
