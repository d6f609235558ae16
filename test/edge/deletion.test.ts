// Deleting what came from a face, through the API with the runner double: a subject takes its photos, its weights and
// the images generated with them (rows and R2 objects) unless the request keeps some; a job still running for it is
// canceled and what it sends afterwards is dropped; an admin deletes a tenant with everything it owns. "Gone" is
// checked the way a user would (every download and listing) and in R2 itself.
import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { apiKeys, jobs, tenants, weights } from '../../db/schema.ts';
import { applyRunnerEvent } from '../../edge/jobs/runner-events.ts';
import { call, createAdminKey, createTenant, expectError, testEnv, withDb, type TestTenant } from './helpers.ts';
import { file, form, png } from './images.ts';
import { deliverOk, waitForRunnerJob } from './runner-double.ts';

type Job = { id: string; status: string; weights_id?: string | null };
type Generation = { id: string; images: { url: string }[] };

const bucket = () => (env as unknown as { BUCKET: R2Bucket }).BUCKET;

async function objectsUnder(prefix: string): Promise<string[]> {
  return (await bucket().list({ prefix })).objects.map((o) => o.key);
}

async function json<T>(response: Response, status: number): Promise<T> {
  const body = await response.text();
  if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${body}`);
  return JSON.parse(body) as T;
}

/** A subject with one photo, a succeeded personalization, and one generation with two images. */
async function faceWithEverything(tenant: TestTenant) {
  const subject = await json<{ id: string; images: { id: string }[] }>(
    await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(png(256, 256), 'face.png')], { name: 'to forget' }) }),
    201,
  );
  const personalization = await json<Job>(await call('/v1/personalizations', { method: 'POST', key: tenant.key, json: { subject_id: subject.id, finetune: { steps: 2 } } }), 202);
  for (const signed of (await waitForRunnerJob(personalization.id)).events) await deliverOk(signed);
  const weightsId = (await json<Job>(await call(`/v1/personalizations/${personalization.id}`, { key: tenant.key }), 200)).weights_id!;
  const generation = await json<Job>(
    await call('/v1/generations', { method: 'POST', key: tenant.key, json: { weights_id: weightsId, prompt: 'a [V] face', num_images: 2, steps: 2, width: 64, height: 64 } }),
    202,
  );
  for (const signed of (await waitForRunnerJob(generation.id)).events) await deliverOk(signed);
  const images = (await json<Generation>(await call(`/v1/generations/${generation.id}`, { key: tenant.key }), 200)).images;
  expect(images).toHaveLength(2);
  return { subjectId: subject.id, imageId: subject.images[0]!.id, personalizationId: personalization.id, weightsId, generationId: generation.id };
}

/** Every way a user could fetch something of the face, with its answer status. */
async function downloadStatuses(tenant: TestTenant, face: Awaited<ReturnType<typeof faceWithEverything>>) {
  const status = async (path: string) => {
    const response = await call(path, { key: tenant.key });
    await response.arrayBuffer();
    return response.status;
  };
  const generation = await call(`/v1/generations/${face.generationId}`, { key: tenant.key });
  const images = generation.status === 200 ? ((await generation.json()) as Generation).images.length : (await generation.text(), -1);
  return {
    subject: await status(`/v1/subjects/${face.subjectId}`),
    photo: await status(`/v1/subjects/${face.subjectId}/images/${face.imageId}`),
    weights: await status(`/v1/weights/${face.weightsId}`),
    download: await status(`/v1/weights/${face.weightsId}/download?format=lidb&dtype=fp16`),
    generatedImage: await status(`/v1/generations/${face.generationId}/images/0`),
    generationImagesListed: images,
  };
}

describe('deleting a subject', () => {
  it('removes its photos, weights and generated images, rows and R2 objects: nothing of it is downloadable', async () => {
    const tenant = await createTenant('erase all');
    const face = await faceWithEverything(tenant);
    expect(await downloadStatuses(tenant, face)).toEqual({ subject: 200, photo: 200, weights: 200, download: 200, generatedImage: 200, generationImagesListed: 2 });
    const stored = await objectsUnder(`tenants/${tenant.id}/`);
    expect(stored.some((k) => k.includes('/subjects/')) && stored.some((k) => k.includes('/weights/')) && stored.some((k) => k.includes('/generations/'))).toBe(true);

    expect((await call(`/v1/subjects/${face.subjectId}`, { method: 'DELETE', key: tenant.key })).status).toBe(204);
    expect(await downloadStatuses(tenant, face)).toEqual({ subject: 404, photo: 404, weights: 404, download: 404, generatedImage: 404, generationImagesListed: 0 });
    expect(await objectsUnder(`tenants/${tenant.id}/`)).toEqual([]);
    expect(((await (await call('/v1/weights', { key: tenant.key })).json()) as { data: unknown[] }).data).toEqual([]);
    await expectError(await call('/v1/generations', { method: 'POST', key: tenant.key, json: { weights_id: face.weightsId, prompt: 'x' } }), 404, 'not_found');
    await expectError(await call(`/v1/subjects/${face.subjectId}`, { method: 'DELETE', key: tenant.key }), 404, 'not_found');
  });

  it('keeps the weights and generated images the request names, and only those', async () => {
    const tenant = await createTenant('erase some');
    const keepWeights = await faceWithEverything(tenant);
    expect((await call(`/v1/subjects/${keepWeights.subjectId}?keep=weights`, { method: 'DELETE', key: tenant.key })).status).toBe(204);
    expect(await downloadStatuses(tenant, keepWeights)).toEqual({ subject: 404, photo: 404, weights: 200, download: 200, generatedImage: 404, generationImagesListed: 0 });

    const keepBoth = await faceWithEverything(tenant);
    expect((await call(`/v1/subjects/${keepBoth.subjectId}?keep=generations,weights`, { method: 'DELETE', key: tenant.key })).status).toBe(204);
    expect(await downloadStatuses(tenant, keepBoth)).toEqual({ subject: 404, photo: 404, weights: 200, download: 200, generatedImage: 200, generationImagesListed: 2 });
    expect(await objectsUnder(`tenants/${tenant.id}/subjects/`)).toEqual([]);

    const stranger = await createTenant('not theirs');
    await expectError(await call(`/v1/subjects/${keepBoth.subjectId}`, { method: 'DELETE', key: stranger.key }), 404, 'not_found');
    for (const bad of ['photos', 'weights,weights', 'weights,', '']) {
      await expectError(await call(`/v1/subjects/${keepWeights.subjectId}?keep=${bad}`, { method: 'DELETE', key: tenant.key }), 422, 'invalid_request');
    }
  });

  it('cancels a personalization still running for the subject; its late result is dropped', async () => {
    const tenant = await createTenant('erase mid-job');
    const subject = await json<{ id: string }>(await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(png(256, 256), 'face.png')]) }), 201);
    const running = await json<Job>(await call('/v1/personalizations', { method: 'POST', key: tenant.key, json: { subject_id: subject.id, finetune: { steps: 2 } } }), 202);
    const received = await waitForRunnerJob(running.id);
    await deliverOk(received.events.find((e) => e.event.type === 'started')!);

    expect((await call(`/v1/subjects/${subject.id}`, { method: 'DELETE', key: tenant.key })).status).toBe(204);
    expect((await json<Job>(await call(`/v1/personalizations/${running.id}`, { key: tenant.key }), 200)).status).toBe('canceled');
    const late = await deliverOk(received.events.find((e) => e.event.type === 'succeeded')!);
    expect(late).toMatchObject({ outcome: 'stale', cancel: true });
    expect(await withDb(({ db }) => db.select().from(weights).where(eq(weights.jobId, running.id)))).toEqual([]);
    expect(await objectsUnder(`tenants/${tenant.id}/`)).toEqual([]);
  });
});

describe('a result that arrives while its subject is deleted', () => {
  it('files stored for it before the deletion committed are removed once the event finds the job canceled', async () => {
    const tenant = await createTenant('erase during store');
    const subject = await json<{ id: string }>(await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(png(256, 256), 'face.png')]) }), 201);
    const job = await json<Job>(await call('/v1/personalizations', { method: 'POST', key: tenant.key, json: { subject_id: subject.id, finetune: { steps: 2 } } }), 202);
    const succeeded = (await waitForRunnerJob(job.id)).events.find((e) => e.event.type === 'succeeded')!.event;
    // The deletion lands between the first result file reaching R2 and the transaction that would record it.
    const real = bucket();
    let deleted = false;
    const racing = {
      ...testEnv,
      BUCKET: Object.assign(Object.create(real) as R2Bucket, {
        put: async (...args: Parameters<R2Bucket['put']>) => {
          const stored = await real.put(...args);
          if (!deleted) {
            deleted = true;
            expect((await call(`/v1/subjects/${subject.id}`, { method: 'DELETE', key: tenant.key })).status).toBe(204);
          }
          return stored;
        },
        delete: (keys: string | string[]) => real.delete(keys),
      }),
    };
    const ack = await withDb(({ db }) => applyRunnerEvent(db, racing, succeeded));
    expect(deleted).toBe(true);
    expect(ack).toMatchObject({ outcome: 'stale', cancel: true });
    expect(await objectsUnder(`tenants/${tenant.id}/`)).toEqual([]);
  });
});

describe('deleting a tenant', () => {
  it('an admin deletes a tenant with everything it owns; its keys stop working; other tenants are untouched', async () => {
    const admin = await createAdminKey();
    const doomed = await createTenant('doomed');
    const other = await createTenant('bystander');
    const face = await faceWithEverything(doomed);
    const kept = await faceWithEverything(other);

    await expectError(await call(`/v1/admin/tenants/${doomed.id}`, { method: 'DELETE', key: doomed.key }), 403, 'forbidden');
    expect((await call(`/v1/admin/tenants/${doomed.id}`, { method: 'DELETE', key: admin })).status).toBe(204);

    expect(await objectsUnder(`tenants/${doomed.id}/`)).toEqual([]);
    await withDb(async ({ db }) => {
      expect(await db.select().from(tenants).where(eq(tenants.id, doomed.id))).toEqual([]);
      expect(await db.select().from(jobs).where(eq(jobs.tenantId, doomed.id))).toEqual([]);
      expect(await db.select().from(apiKeys).where(eq(apiKeys.tenantId, doomed.id))).toEqual([]);
    });
    await expectError(await call(`/v1/weights/${face.weightsId}/download?format=lidb&dtype=fp16`, { key: doomed.key }), 401, 'invalid_api_key');
    await expectError(await call(`/v1/admin/tenants/${doomed.id}`, { method: 'DELETE', key: admin }), 404, 'not_found');

    expect(await downloadStatuses(other, kept)).toEqual({ subject: 200, photo: 200, weights: 200, download: 200, generatedImage: 200, generationImagesListed: 2 });
  });
});
