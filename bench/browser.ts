// npm run bench:browser [-- --quick] [-- --webgpu]: HyperDreamBooth on the user's device against the runner, on the same machine in
// one run. The browser is Debian's chromium (playwright-core) on the web client served by `wrangler dev` (the device
// mode: the runner's library bundled by scripts/build-device.ts on onnxruntime-web); the runner is the same library
// in this process on onnxruntime-node. Both personalize the same face with the same seed and settings twice (the
// first run builds graphs and opens sessions; the second is what a user who personalizes again waits), then draw a
// batch of images. Also: the pack's first download (bytes over the network) and its second (from the browser cache).
// Writes bench/results/browser.json and prints a table. Targets (the device-mode issue): device personalization
// ≤ 3× the runner's wall time; the first load ≤ 25 MB transferred, the second from cache.
// --webgpu adds the same generation with the sampler on WebGPU (`?backend=webgpu`, forced: headless Chromium offers only
// SwiftShader, a fallback adapter that `auto` leaves on WebAssembly) and what the WebGPU build adds to the download.
// It is opt-in: SwiftShader runs the UNet on the CPU, ≈140× slower than WebAssembly here (173 s for 2 images at DDIM
// 25 against 1.2 s), so the full run's 4 images take minutes.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumPath, missingChromiumMessage } from '../scripts/bootstrap.mjs';
import { buildDevice } from '../scripts/build-device.ts';
import { REPO_ROOT } from '../scripts/local-stack/stack.ts';
import { startStaticEdge } from '../scripts/local-stack/static-edge.ts';
import type { PackManifest } from '../gpu-runner/browser/protocol.ts';
import { generate } from '../gpu-runner/diffusion/sampler.ts';
import { shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import { loadModelPack, schedulerChoice } from '../gpu-runner/pack/model-pack.ts';
import { WORLD_PACK_DIR } from '../gpu-runner/pack/world-pack.ts';
import { fastFinetune, predict } from '../gpu-runner/personalize/api.ts';
import { decodeFaceImage } from '../gpu-runner/personalize/face/preprocess.ts';
import { DEFAULT_FINETUNE_STEPS } from '../gpu-runner/personalize/finetune/fast-finetune.ts';
import { PersonalizedSessions } from '../gpu-runner/personalize/personalized-diffusion.ts';
import { DEFAULT_WORLD, encodePng, sampleAt } from '../gpu-runner/world/index.ts';

const quick = process.argv.includes('--quick');
const webgpu = process.argv.includes('--webgpu');
/** The full run: the library's default finetune and the API's default generation (DDIM 25, guidance 7.5), 4 images. */
const SETTINGS = quick ? { steps: 3, images: 1, inferenceSteps: 2 } : { steps: DEFAULT_FINETUNE_STEPS, images: 4, inferenceSteps: 25 };
const SEED = 0;
const GUIDANCE = 7.5;
const PROMPT = 'a photo of a [V] face, on a blue background, wearing a hat';
/** The targets. */
const MAX_SLOWDOWN = 3;
const MAX_FIRST_LOAD_BYTES = 25_000_000;
// --enable-unsafe-webgpu: headless Chromium offers a WebGPU adapter (SwiftShader) only with it.
const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface Personalization {
  predictMs: number;
  firstStepMs: number;
  stepMs: number;
  totalMs: number;
}

const median = (values: readonly number[]) => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const log = (event: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);

async function runnerSide(image: Awaited<ReturnType<typeof decodeFaceImage>>, identifier: string) {
  const pack = await loadModelPack(WORLD_PACK_DIR, () => {});
  const runs: Personalization[] = [];
  let weights;
  for (let run = 0; run < 2; run++) {
    const started = performance.now();
    const prediction = await predict(pack.model, { image });
    const predictMs = performance.now() - started;
    const ends: number[] = [];
    ({ weights } = await fastFinetune(pack.model, { image }, prediction, { steps: SETTINGS.steps, seed: SEED, identifier, onProgress: () => ends.push(performance.now()) }));
    runs.push({ predictMs, firstStepMs: ends[0]! - started - predictMs, stepMs: median(ends.slice(1).map((end, i) => end - ends[i]!)), totalMs: performance.now() - started });
  }
  const sessions = new PersonalizedSessions(pack.model, undefined);
  const side = pack.nativeResolution ?? 32;
  const request = { prompt: PROMPT, seed: SEED, numInferenceSteps: SETTINGS.inferenceSteps, guidanceScale: GUIDANCE, width: side, height: side, batchSize: SETTINGS.images, scheduler: schedulerChoice(pack, 'ddim') };
  const generations: number[] = [];
  for (let run = 0; run < 2; run++) {
    const started = performance.now();
    await generate(sessions.modelsFor(weights!), pack.tokenizer, request);
    generations.push(performance.now() - started);
  }
  await sessions.release();
  return { runs, generations };
}

async function browserSide(url: string, image: { width: number; height: number; data: Uint8Array }) {
  // A profile on disk, as a user's browser has: a fresh context keeps its HTTP cache in memory, which drops large files.
  const profile = mkdtempSync(join(tmpdir(), 'hdb-bench-browser-'));
  const browser = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath(), args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    await page.goto(`${url}/`);
    // A string, not a function: the runtime is the page's own module.
    return (await page.evaluate(`(async () => {
      const { DeviceRuntime } = await import('/device.js');
      const first = new DeviceRuntime();
      const coldLoad = await first.load();
      first.worker.terminate();
      const runtime = new DeviceRuntime();
      const warmLoad = await runtime.load();
      const image = { width: ${image.width}, height: ${image.height}, data: Uint8Array.from(${JSON.stringify([...image.data])}) };
      const runs = [];
      for (let run = 0; run < 2; run++) {
        const started = performance.now();
        const done = await runtime.personalize({ image, steps: ${SETTINGS.steps}, seed: ${SEED} }).done;
        runs.push({ ...done, totalMs: performance.now() - started });
      }
      const generations = [];
      for (let run = 0; run < 2; run++) {
        const started = performance.now();
        await runtime.request('generate', { prompt: ${JSON.stringify(PROMPT)}, numImages: ${SETTINGS.images}, seed: ${SEED}, steps: ${SETTINGS.inferenceSteps}, guidanceScale: ${GUIDANCE}, size: 32 });
        generations.push(performance.now() - started);
      }
      runtime.worker.terminate();
      let webgpu = null;
      if (${webgpu}) {
        // The same generation on WebGPU: its own worker (the backend is chosen at load), the same weights (training
        // stays on WebAssembly), the first generation opening sessions and the second timed.
        const gpu = new DeviceRuntime();
        const loaded = await gpu.load(undefined, 'webgpu');
        await gpu.personalize({ image, steps: ${SETTINGS.steps}, seed: ${SEED} }).done;
        const generationMs = [];
        let placements;
        for (let run = 0; run < 2; run++) {
          const started = performance.now();
          ({ placements } = await gpu.request('generate', { prompt: ${JSON.stringify(PROMPT)}, numImages: ${SETTINGS.images}, seed: ${SEED}, steps: ${SETTINGS.inferenceSteps}, guidanceScale: ${GUIDANCE}, size: 32 }));
          generationMs.push(performance.now() - started);
        }
        gpu.worker.terminate();
        webgpu = { backend: loaded.backend, placements, generationMs };
      }
      return { coldLoad, warmLoad, runs, generations, webgpu };
    })()`)) as {
      coldLoad: { backend: Record<string, unknown>; bytes: number; transferred: number; ms: number };
      warmLoad: { bytes: number; transferred: number; ms: number };
      runs: { predictMs: number; firstStepMs: number; stepMs: number[]; totalMs: number }[];
      generations: number[];
      webgpu: { backend: Record<string, unknown>; placements: Record<string, unknown>; generationMs: number[] } | null;
    };
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The WebGPU build's files as served (scripts/build-device.ts): its API module, loader and WebAssembly parts. */
function webgpuBuildBytes(manifest: PackManifest): number {
  const folder = join(REPO_ROOT, 'edge', 'client', 'build', manifest.ortBase);
  return readdirSync(folder)
    .filter((file) => file === manifest.ortWebGpu.api || file.includes('.jsep.'))
    .reduce((sum, file) => sum + statSync(join(folder, file)).size, 0);
}

async function main(): Promise<void> {
  if (!existsSync(chromiumPath())) throw new Error(missingChromiumMessage(chromiumPath()));
  const manifest = await buildDevice({ packDir: WORLD_PACK_DIR, quiet: true });
  // The world's TEST face at the pack's 32 px: neither side resizes it.
  const image = await decodeFaceImage(new Uint8Array(await encodePng(sampleAt({ ...DEFAULT_WORLD, size: 32 }, 'test', 3).image)));
  log({ event: 'bench.browser.runner', ...SETTINGS });
  const runner = await runnerSide(image, manifest.identifier);
  await shutdownSharedSessionHost();
  log({ event: 'bench.browser.device' });
  const edge = await startStaticEdge();
  let device;
  try {
    device = await browserSide(edge.url, image);
  } finally {
    await edge.stop();
  }
  const devicePersonalizations: Personalization[] = device.runs.map((run) => ({ predictMs: run.predictMs, firstStepMs: run.firstStepMs, stepMs: median(run.stepMs), totalMs: run.totalMs }));
  const rows = [
    ['prediction', runner.runs[1]!.predictMs, devicePersonalizations[1]!.predictMs],
    ['one finetune step (median)', runner.runs[1]!.stepMs, devicePersonalizations[1]!.stepMs],
    [`personalization (predict + ${SETTINGS.steps} steps)`, runner.runs[1]!.totalMs, devicePersonalizations[1]!.totalMs],
    ['personalization, first of the process/page', runner.runs[0]!.totalMs, devicePersonalizations[0]!.totalMs],
    [`generation (${SETTINGS.images} images, DDIM ${SETTINGS.inferenceSteps}, 32 px)`, runner.generations[1]!, device.generations[1]!],
  ] as const;
  const slowdown = devicePersonalizations[1]!.totalMs / runner.runs[1]!.totalMs;
  const result = {
    date: new Date().toISOString(),
    quick,
    settings: { ...SETTINGS, seed: SEED, guidanceScale: GUIDANCE, prompt: PROMPT, pack: manifest.id },
    backend: device.coldLoad.backend,
    load: { bytes: device.coldLoad.bytes, firstTransferred: device.coldLoad.transferred, firstMs: device.coldLoad.ms, secondTransferred: device.warmLoad.transferred, secondMs: device.warmLoad.ms },
    runner: { personalizations: runner.runs, generationMs: runner.generations },
    device: { personalizations: devicePersonalizations, generationMs: device.generations },
    webgpu: device.webgpu && { ...device.webgpu, buildBytes: webgpuBuildBytes(manifest) },
    slowdown,
    targets: { maxSlowdown: MAX_SLOWDOWN, slowdownMet: slowdown <= MAX_SLOWDOWN, maxFirstLoadBytes: MAX_FIRST_LOAD_BYTES, firstLoadMet: device.coldLoad.transferred <= MAX_FIRST_LOAD_BYTES, secondLoadFromCache: device.warmLoad.transferred === 0 },
  };
  mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'bench', 'results', 'browser.json'), `${JSON.stringify(result, null, 2)}\n`);
  const ms = (value: number) => `${(value / 1000).toFixed(3)} s`;
  const lines = [
    `| measure | runner (onnxruntime-node) | browser (onnxruntime-web, ${JSON.stringify(device.coldLoad.backend)}) | ratio |`,
    '|---|---|---|---|',
    ...rows.map(([name, node, web]) => `| ${name} | ${ms(node)} | ${ms(web)} | ${(web / node).toFixed(2)}× |`),
    `| pack load, first (transferred) | – | ${ms(device.coldLoad.ms)} (${(device.coldLoad.transferred / 1e6).toFixed(2)} MB) | – |`,
    `| pack load, second (transferred) | – | ${ms(device.warmLoad.ms)} (${(device.warmLoad.transferred / 1e6).toFixed(2)} MB) | – |`,
  ];
  if (device.webgpu) {
    const adapter = (device.webgpu.backend.adapter as { name?: string }).name ?? 'no adapter';
    lines.push(
      `| generation on WebGPU (${adapter}; sampler's sessions: ${JSON.stringify(device.webgpu.placements.unet)}) | ${ms(runner.generations[1]!)} | ${ms(device.webgpu.generationMs[1]!)} | ${(device.webgpu.generationMs[1]! / runner.generations[1]!).toFixed(2)}× (${(device.webgpu.generationMs[1]! / device.generations[1]!).toFixed(2)}× WebAssembly's) |`,
      `| WebGPU build (downloaded only to sample on WebGPU) | – | ${(webgpuBuildBytes(manifest) / 1e6).toFixed(2)} MB | – |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\ndevice personalization ${slowdown.toFixed(2)}× the runner's (target ≤ ${MAX_SLOWDOWN}×)${quick ? ' [--quick: not a measurement]' : ''}\n`);
}

await main();
