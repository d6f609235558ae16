// The web client in a real browser (Debian's chromium driven by playwright-core) against the whole local stack:
// paste a key, upload a face, follow the personalization's progress, download the weights, generate, see the gallery.
// Screenshots are kept under test-artifacts/web-client/.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, missingChromiumMessage } from '../../scripts/bootstrap.mjs';
import { REPO_ROOT } from '../../scripts/local-stack/stack.ts';
import { startE2eStack, type E2eStack } from './support/e2e-stack.ts';
import { facePng } from './support/face.ts';
import { parseSafetensors } from './support/safetensors.ts';
import { collectPageErrors } from './support/page-errors.ts';

// `npm test` installs Debian's chromium when it is missing and it can (scripts/bootstrap.mjs).
const CHROMIUM = chromiumPath();
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'web-client');
const FINETUNE_STEPS = 12;
const JOB_TIMEOUT_MS = 150_000;

let e2e: E2eStack;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(missingChromiumMessage(CHROMIUM));
  mkdirSync(ARTIFACTS, { recursive: true });
  e2e = await startE2eStack();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, acceptDownloads: true });
  // The wrong key's 401 is logged by Chromium itself; anything else is a client bug.
  collectPageErrors(page, consoleErrors, /status of 401/);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await e2e?.close();
});

describe.sequential('the web client in Chromium', () => {
  it('takes a key and refuses a wrong one', async () => {
    await page.goto(`${e2e.stack.edgeUrl}/`);
    await expect.poll(() => page.title()).toBe('HyperDreamBooth');
    await page.getByLabel('Your API key').fill('hdb_live_not_a_real_key');
    await page.getByRole('button', { name: 'Use this key' }).click();
    await expect.poll(() => page.locator('#key-status').textContent()).toMatch(/^Key refused/);
    await page.getByLabel('Your API key').fill(e2e.tenant.key);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await expect.poll(() => page.locator('#key-status').textContent()).toBe('Key accepted.');
    await shot('1-key');
  });

  it('uploads a face photo and follows the personalization to the end', async () => {
    await page.locator('#photo').setInputFiles({ name: 'face.png', mimeType: 'image/png', buffer: Buffer.from(await facePng(3)) });
    await page.getByLabel(/Finetune steps/).fill(String(FINETUNE_STEPS));
    await page.getByRole('button', { name: 'Personalize' }).click();
    // Progress shows while it runs (step / total), then the downloads appear.
    await expect.poll(() => page.locator('#job-steps').textContent(), { timeout: JOB_TIMEOUT_MS }).toMatch(/^step \d+ \/ \d+$/);
    await shot('2-progress');
    await expect.poll(() => page.locator('#job-status').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('succeeded');
    expect(await page.locator('#job-steps').textContent()).toBe(`step ${FINETUNE_STEPS} / ${FINETUNE_STEPS}`);
    expect(await page.locator('#job-progress').evaluate((el) => [(el as unknown as { value: number }).value, (el as unknown as { max: number }).max])).toEqual([FINETUNE_STEPS, FINETUNE_STEPS]);
    expect(await page.locator('#downloads').isVisible()).toBe(true);
    await shot('3-personalized');
  });

  it('downloads the weights as a kohya LoRA file', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'LoRA (kohya)' }).click()]);
    expect(download.suggestedFilename()).toMatch(/-kohya\.safetensors$/);
    const path = await download.path();
    const parsed = parseSafetensors(new Uint8Array(readFileSync(path)));
    expect(parsed.tensors.size).toBeGreaterThan(0);
  });

  it('generates from an example prompt and shows the images in the gallery', async () => {
    // The examples are the served pack's (what its world draws), not the paper's prompts.
    const example = page.locator('#examples button').first();
    await expect.poll(() => example.count()).toBe(1);
    const prompt = (await example.textContent())!;
    expect(prompt).toMatch(/\[V\] face/);
    await example.click();
    expect(await page.getByLabel(/^Prompt/).inputValue()).toBe(prompt);
    await page.getByLabel('Images', { exact: true }).fill('2');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect.poll(() => page.locator('#generate-status').textContent(), { timeout: JOB_TIMEOUT_MS }).toBe('2 image(s) ready.');
    const images = page.locator('#gallery img');
    expect(await images.count()).toBe(2);
    const sizes = await images.evaluateAll((elements) =>
      elements.map((img) => [(img as unknown as { naturalWidth: number }).naturalWidth, (img as unknown as { naturalHeight: number }).naturalHeight]),
    );
    expect(sizes).toEqual([
      [64, 64],
      [64, 64],
    ]);
    expect(await page.locator('#gallery figcaption').first().textContent()).toContain(prompt);
    // Mobile-friendly: nothing is wider than a phone's screen.
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await shot('4-gallery');
    await page.setViewportSize({ width: 1280, height: 900 });
    await shot('5-desktop');
    expect(consoleErrors).toEqual([]);
  });
});
