// POST /v1/weights: a native weight file made elsewhere (the web client's "on this device" mode) imported into the
// owner's account, checked by the runner (here the double, which runs the runner's own check on the tiny pack's
// structure: test/support/weights-double.ts) before anything is stored, then used like a personalization's weights.
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../contract/index.ts';
import { weights } from '../../db/schema.ts';
import { newId } from '../../edge/lib/ids.ts';
import { WEIGHTS_IMPORT_MAX_BYTES } from '../../edge/routes/weights.ts';
import { call, createAdminKey, createTenant, expectError, withDb, type TestTenant } from './helpers.ts';
import { deliverOk, runnerUrl, waitForRunnerJob } from './runner-double.ts';

const bucket = () => (env as unknown as { BUCKET: R2Bucket }).BUCKET;

type Weights = {
  id: string;
  source: string;
  subject_id: string | null;
  personalization_id: string | null;
  method: string;
  base_model_id: string;
  rank: number;
  layers: string[];
  num_parameters: number;
  total_bytes: number;
  files: { format: string; dtype: string; byte_size: number; sha256: string }[];
};

/** A file from the runner double: `valid`, `valid-fp32`, `other-base-model`, `nan`, `truncated`, `not-native`, `not-safetensors`. */
async function weightFile(variant: string, seed = 1): Promise<Uint8Array> {
  const res = await fetch(`${runnerUrl()}/control/weights-file?variant=${variant}&seed=${seed}`);
  if (!res.ok) throw new Error(`no ${variant} file: ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

function upload(bytes: Uint8Array, name = 'weights.safetensors'): FormData {
  const body = new FormData();
  body.append('file', new File([bytes], name, { type: 'application/octet-stream' }));
  return body;
}

async function importFile(tenant: TestTenant, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return call('/v1/weights', { method: 'POST', key: tenant.key, body: upload(bytes), headers });
}

async function storedKeys(tenant: TestTenant): Promise<string[]> {
  return (await bucket().list({ prefix: `tenants/${tenant.id}/weights/` })).objects.map((o) => o.key);
}

let owner: TestTenant;
let stranger: TestTenant;

beforeAll(async () => {
  owner = await createTenant('weights importer');
  stranger = await createTenant('weights stranger');
});

describe('importing weights', () => {
  it('stores a valid native file, shows it like any weights, lists it and serves it back', async () => {
    const bytes = await weightFile('valid');
    const res = await importFile(owner, bytes);
    expect(res.status, await res.clone().text()).toBe(201);
    const imported = (await res.json()) as Weights;
    expect(imported).toMatchObject({
      source: 'import',
      subject_id: null,
      personalization_id: null,
      method: 'hyperdreambooth',
      base_model_id: 'hdb-tiny-sd15-random-v2',
      rank: 1,
      total_bytes: bytes.byteLength,
      files: [{ format: 'lidb', dtype: 'fp16', byte_size: bytes.byteLength, sha256: await sha256Hex(bytes) }],
    });
    expect(imported.id).toMatch(/^wts_[0-9a-f]{28}$/);
    expect(imported.layers.length).toBeGreaterThan(0);
    expect(imported.num_parameters).toBeGreaterThan(0);

    expect(await (await call(`/v1/weights/${imported.id}`, { key: owner.key })).json()).toEqual(imported);
    const list = (await (await call('/v1/weights', { key: owner.key })).json()) as { data: Weights[] };
    expect(list.data.map((w) => w.id)).toContain(imported.id);
    const download = await call(`/v1/weights/${imported.id}/download?format=lidb&dtype=fp16`, { key: owner.key });
    expect(download.status).toBe(200);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
  });

  it('keeps an fp32 file as fp32', async () => {
    const res = await importFile(owner, await weightFile('valid-fp32'));
    expect(res.status).toBe(201);
    expect(((await res.json()) as Weights).files.map((f) => `${f.format}/${f.dtype}`)).toEqual(['lidb/fp32']);
  });

  it('generates from imported weights: the runner gets the imported file as the generation weights', async () => {
    const bytes = await weightFile('valid', 2);
    const imported = (await (await importFile(owner, bytes)).json()) as Weights;
    const res = await call('/v1/generations', { method: 'POST', key: owner.key, json: { weights_id: imported.id, prompt: 'a [V] face on the moon', steps: 2, width: 64, height: 64 } });
    expect(res.status, await res.clone().text()).toBe(202);
    const generationId = ((await res.json()) as { id: string }).id;
    const received = await waitForRunnerJob(generationId);
    if (received.request.kind !== 'generation') throw new Error('expected a generation job');
    expect(received.request.payload).toMatchObject({ base_model_id: 'hdb-tiny-sd15-random-v2', weights: { format: 'lidb', dtype: 'fp16', source: { sha256: await sha256Hex(bytes), byte_size: bytes.byteLength } } });

    const succeeded = received.events.find((e) => e.event.type === 'succeeded');
    if (!succeeded) throw new Error('no succeeded event');
    await deliverOk(succeeded);
    const generation = (await (await call(`/v1/generations/${generationId}`, { key: owner.key })).json()) as { status: string; weights_id: string; subject_id: string | null };
    expect(generation).toMatchObject({ status: 'succeeded', weights_id: imported.id });
  });

  it('answers a retry with the same Idempotency-Key with the first import, storing it once', async () => {
    const tenant = await createTenant('idempotent importer');
    const bytes = await weightFile('valid', 3);
    const first = await importFile(tenant, bytes, { 'idempotency-key': 'import-1' });
    const again = await importFile(tenant, bytes, { 'idempotency-key': 'import-1' });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as Weights).id).toBe(((await first.json()) as Weights).id);
    expect(await storedKeys(tenant)).toHaveLength(1);
    const other = await importFile(tenant, await weightFile('valid', 4), { 'idempotency-key': 'import-1' });
    await expectError(other, 409, 'idempotency_key_reused');
  });
});

describe('refused imports', () => {
  const refusals: [variant: string, reason: RegExp][] = [
    ['other-base-model', /made for base model .* this runner serves/],
    ['nan', /non-finite numbers \(NaN or infinity\)/],
    ['truncated', /not a readable safetensors file/],
    ['not-native', /bad __metadata__/],
    ['not-safetensors', /not a readable safetensors file/],
  ];
  for (const [variant, reason] of refusals) {
    it(`refuses a ${variant} file with 422 invalid_weights and the runner's reason, storing nothing`, async () => {
      const tenant = await createTenant(`refused ${variant}`);
      const body = await expectError(await importFile(tenant, await weightFile(variant)), 422, 'invalid_weights');
      expect(body.error.message).toMatch(reason);
      expect(await storedKeys(tenant)).toEqual([]);
      expect(((await (await call('/v1/weights', { key: tenant.key })).json()) as { data: unknown[] }).data).toEqual([]);
    });
  }

  it('refuses an empty file, a body that is not multipart, a form without a file and a file over the limit', async () => {
    const tenant = await createTenant('refused shapes');
    await expectError(await importFile(tenant, new Uint8Array(0)), 422, 'invalid_weights');
    await expectError(await call('/v1/weights', { method: 'POST', key: tenant.key, json: { file: 'x' } }), 415, 'unsupported_media_type');
    const noFile = new FormData();
    noFile.append('name', 'x');
    await expectError(await call('/v1/weights', { method: 'POST', key: tenant.key, body: noFile }), 422, 'invalid_request');
    await expectError(await importFile(tenant, new Uint8Array(WEIGHTS_IMPORT_MAX_BYTES + 1)), 413, 'weights_too_large');
    expect(await storedKeys(tenant)).toEqual([]);
  });
});

describe('imported weights and other tenants', () => {
  it('are invisible and unusable to another tenant', async () => {
    const imported = (await (await importFile(owner, await weightFile('valid', 5))).json()) as Weights;
    await expectError(await call(`/v1/weights/${imported.id}`, { key: stranger.key }), 404, 'not_found');
    await expectError(await call(`/v1/weights/${imported.id}/download`, { key: stranger.key }), 404, 'not_found');
    await expectError(await call('/v1/generations', { method: 'POST', key: stranger.key, json: { weights_id: imported.id, prompt: 'x' } }), 404, 'not_found');
    await expectError(await call(`/v1/weights/${imported.id}`, { method: 'DELETE', key: stranger.key }), 404, 'not_found');
    const list = (await (await call('/v1/weights', { key: stranger.key })).json()) as { data: Weights[] };
    expect(list.data.map((w) => w.id)).not.toContain(imported.id);
    expect((await call(`/v1/weights/${imported.id}`, { key: owner.key })).status).toBe(200);
  });
});

describe('deleting imported weights', () => {
  it('DELETE /v1/weights/:id removes the row from view and the object from R2', async () => {
    const tenant = await createTenant('deletes an import');
    const imported = (await (await importFile(tenant, await weightFile('valid', 6))).json()) as Weights;
    expect(await storedKeys(tenant)).toHaveLength(1);
    expect((await call(`/v1/weights/${imported.id}`, { method: 'DELETE', key: tenant.key })).status).toBe(204);
    expect(await storedKeys(tenant)).toEqual([]);
    await expectError(await call(`/v1/weights/${imported.id}`, { key: tenant.key }), 404, 'not_found');
  });

  it('go with their tenant', async () => {
    const doomed = await createTenant('doomed importer');
    await importFile(doomed, await weightFile('valid', 7));
    expect(await storedKeys(doomed)).toHaveLength(1);
    const admin = await createAdminKey();
    expect((await call(`/v1/admin/tenants/${doomed.id}`, { method: 'DELETE', key: admin })).status).toBe(204);
    expect(await storedKeys(doomed)).toEqual([]);
  });
});

describe('the weights table (migration 0005)', () => {
  it('refuses a personalization-sourced row without its job, and takes an imported one without', async () => {
    const tenant = await createTenant('constraint check');
    const row = { tenantId: tenant.id, method: 'hyperdreambooth', baseModelId: 'm', rank: 1, layers: ['x'], numParameters: 1, totalBytes: 1 };
    await withDb(async ({ db }) => {
      await expect(db.insert(weights).values({ ...row, id: newId('weights'), source: 'personalization', jobId: null })).rejects.toThrow();
      await expect(db.insert(weights).values({ ...row, id: newId('weights') })).rejects.toThrow();
      await db.insert(weights).values({ ...row, id: newId('weights'), source: 'import', jobId: null });
    });
  });
});
