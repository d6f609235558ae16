// "On this device" with an account, in a real browser (Debian's chromium driven by playwright-core) against the whole
// local stack: a user pastes an API key, personalizes a face on the device, saves the weights to the account
// (POST /v1/weights, docs/api.md "Importing weights"), and the account then lists them and generates with them on the
// runner, while the photo never leaves the browser. The runner serves the pack the device build serves (the world
// pack): it refuses weights made for another base model. The page is opened through a recording proxy, which sees every
// request body on the wire (Chromium does not report a FormData file's bytes to playwright).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, missingChromiumMessage } from '../../scripts/bootstrap.mjs';
import { buildDevice } from '../../scripts/build-device.ts';
import { REPO_ROOT } from '../../scripts/local-stack/stack.ts';
import type { PackManifest } from '../../gpu-runner/browser/protocol.ts';
import { WORLD_PACK_DIR } from '../../gpu-runner/pack/world-pack.ts';
import type { Job } from './support/api.ts';
import { startE2eStack, type E2eStack } from './support/e2e-stack.ts';
import { facePng } from './support/face.ts';
import { startRecordingProxy, type RecordingProxy } from './support/recording-proxy.ts';
import { collectPageErrors } from './support/page-errors.ts';

const CHROMIUM = chromiumPath();
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'device-account');
/** Few steps: what is under test is where the weights go, not how good they are (device.test.ts checks those). */
const FINETUNE_STEPS = 5;
/** One small image with few sampler steps: enough to show the runner generates from the imported file. */
const GENERATION = { num_images: 1, steps: 2, width: 64, height: 64, seed: 5 };
const DEVICE_TIMEOUT_MS = 120_000;
const JOB_TIMEOUT_MS = 150_000;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

let e2e: E2eStack;
let proxy: RecordingProxy;
let manifest: PackManifest;
let browser: Browser;
let page: Page;
let photo: Buffer;
/** Every request the page and its device worker made, as Chromium reported it. */
const sent: { method: string; url: URL }[] = [];
const consoleErrors: string[] = [];
let savedId: string;

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(missingChromiumMessage(CHROMIUM));
  mkdirSync(ARTIFACTS, { recursive: true });
  // The build first: the stack's edge serves edge/client/ as it is when it starts.
  manifest = await buildDevice({ packDir: WORLD_PACK_DIR, quiet: true });
  e2e = await startE2eStack({ packDir: WORLD_PACK_DIR });
  proxy = await startRecordingProxy(e2e.stack.edgeUrl);
  photo = Buffer.from(await facePng(3));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  // Playwright reports the device worker's fetches on its page too.
  page.on('request', (request) => sent.push({ method: request.method(), url: new URL(request.url()) }));
  collectPageErrors(page, consoleErrors);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  await e2e?.close();
});

describe.sequential('on this device, saved to the account', () => {
  it('personalizes on the device and saves the weights to the account', async () => {
    await page.goto(`${proxy.url}/`);
    await page.getByLabel('Your API key').fill(e2e.tenant.key);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await expect.poll(() => page.locator('#key-status').textContent()).toBe('Key accepted.');

    await page.getByLabel(/On this device/).check();
    await expect.poll(() => page.locator('#device-status').textContent(), { timeout: DEVICE_TIMEOUT_MS }).toMatch(new RegExp(`^Ready on this device: ${manifest.id}, `));
    await page.locator('#photo').setInputFiles({ name: 'face.png', mimeType: 'image/png', buffer: photo });
    await page.getByLabel(/Finetune steps/).fill(String(FINETUNE_STEPS));
    await page.getByRole('button', { name: 'Personalize' }).click();
    await expect.poll(() => page.locator('#job-status').textContent(), { timeout: DEVICE_TIMEOUT_MS }).toMatch(/^succeeded/);
    expect(await page.locator('#job-steps').textContent()).toBe(`step ${FINETUNE_STEPS} / ${FINETUNE_STEPS}`);

    // A double click saves once (the next test lists exactly one weights), and a saved set cannot be saved again.
    await page.getByRole('button', { name: 'Save weights to my account' }).dblclick();
    await expect.poll(() => page.locator('#save-status').textContent(), { timeout: 30_000 }).toMatch(/^Saved to your account as wts_\w+\.$/);
    expect(await page.getByRole('button', { name: 'Save weights to my account' }).isDisabled()).toBe(true);
    savedId = /as (wts_\w+)\.$/.exec((await page.locator('#save-status').textContent())!)![1]!;
    await shot('1-saved');
    expect(consoleErrors).toEqual([]);
  }, 300_000);

  it('generates from the saved weights on the server from the same page', async () => {
    await page.getByLabel(/On the server/).check();
    await page.locator('#num-images').fill('1');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect.poll(() => page.locator('#generate-status').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('1 image(s) ready.');
    await shot('2-generated-on-server');
    expect(consoleErrors).toEqual([]);
  }, JOB_TIMEOUT_MS + 30_000);

  it('lists the saved weights as imported, with no subject and no personalization', async () => {
    const listed = await e2e.tenant.expectJson<{ data: Record<string, unknown>[] }>('GET', '/v1/weights', 200);
    expect(listed.data.map((weights) => weights.id)).toEqual([savedId]);
    expect(listed.data[0]).toMatchObject({ id: savedId, source: 'import', subject_id: null, personalization_id: null, method: 'hyperdreambooth', base_model_id: manifest.id });
  });

  it('generates with the saved weights on the runner', async () => {
    const created = await e2e.tenant.expectJson<Job>('POST', '/v1/generations', 202, {
      json: { weights_id: savedId, prompt: manifest.examples[0], ...GENERATION },
      idempotent: true,
    });
    const done = (await e2e.tenant.waitFor(`/v1/generations/${created.id}`, undefined, JOB_TIMEOUT_MS)) as Job & { images: { url: string }[] };
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.images).toHaveLength(GENERATION.num_images);
    const png = await e2e.tenant.bytes(new URL(done.images[0]!.url).pathname);
    expect(png.status).toBe(200);
    expect([...png.bytes.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const view = new DataView(png.bytes.buffer, png.bytes.byteOffset);
    expect([view.getUint32(16), view.getUint32(20)]).toEqual([GENERATION.width, GENERATION.height]);
  }, JOB_TIMEOUT_MS + 30_000);

  it('never sent the photo: no subject, no personalization, no request body holding it', async () => {
    // Everything the page fetched went through the proxy (blob: URLs are the page's own memory: the photo's preview).
    const network = sent.filter((request) => request.url.protocol !== 'blob:' && request.url.protocol !== 'data:');
    expect(network.filter((request) => request.url.origin !== proxy.url).map((request) => request.url.href)).toEqual([]);
    expect(proxy.requests.length).toBeGreaterThanOrEqual(network.length);
    // The key check reads one subject (GET /v1/subjects?limit=1); nothing is ever sent to create one.
    expect(proxy.requests.filter((request) => request.path.startsWith('/v1/subjects') && request.method !== 'GET')).toEqual([]);
    expect(proxy.requests.filter((request) => request.path.startsWith('/v1/personalizations'))).toEqual([]);
    // The requests that carry anything: the weight file, holding the very file the account stored, then the server
    // generation's prompt, which names the saved weights.
    const withBody = proxy.requests.filter((request) => request.body.byteLength > 0);
    expect(withBody.map((request) => `${request.method} ${request.path}`)).toEqual(['POST /v1/weights', 'POST /v1/generations']);
    expect(JSON.parse(withBody[1]!.body.toString('utf8'))).toMatchObject({ weights_id: savedId });
    const stored = await e2e.tenant.bytes(`/v1/weights/${savedId}/download?format=lidb&dtype=fp16`);
    expect(stored.status).toBe(200);
    expect(withBody[0]!.body.includes(Buffer.from(stored.bytes))).toBe(true);
    for (const request of proxy.requests) {
      expect(request.body.includes(photo), `${request.method} ${request.path} carries the photo`).toBe(false);
      expect(request.body.byteLength, `${request.method} ${request.path} is the photo's size`).not.toBe(photo.byteLength);
    }
    // And the account holds no photo.
    expect((await e2e.tenant.expectJson<{ data: unknown[] }>('GET', '/v1/subjects', 200)).data).toEqual([]);
  });

  it('offers no saving to an account after a refused key', async () => {
    // A page of its own: a fresh browser context, so no accepted key kept from the first page.
    const other = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await other.goto(`${proxy.url}/`);
      await other.getByLabel('Your API key').fill('hdb_live_not_a_real_key');
      await other.getByRole('button', { name: 'Use this key' }).click();
      await expect.poll(() => other.locator('#key-status').textContent()).toMatch(/^Key refused/);
      await other.getByLabel(/On this device/).check();
      await other.locator('#photo').setInputFiles({ name: 'face.png', mimeType: 'image/png', buffer: photo });
      await other.getByLabel(/Finetune steps/).fill(String(FINETUNE_STEPS));
      await expect.poll(() => other.locator('#device-status').textContent(), { timeout: DEVICE_TIMEOUT_MS }).toMatch(/^Ready on this device/);
      await other.getByRole('button', { name: 'Personalize' }).click();
      await expect.poll(() => other.locator('#job-status').textContent(), { timeout: DEVICE_TIMEOUT_MS }).toMatch(/^succeeded/);
      expect(await other.locator('#downloads').isVisible()).toBe(true);
      expect(await other.locator('#save-weights').isVisible()).toBe(false);
    } finally {
      await other.close();
    }
  }, 300_000);
});
