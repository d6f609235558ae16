// `npm run check:device`: on a machine with an NVIDIA GPU, runs the runner's own executor with
// RUNNER_EXECUTION_PROVIDER=cuda on a full-size SD 1.5-architecture pack of random weights (the UNet as external data,
// written once under .cache/), checks that every session kind reports CUDA, and measures a 512 px, 25-step generation
// and a full personalization (hypernetwork prediction + 40 relax steps), and the same generation again with
// RUNNER_SAMPLING_PRECISION=fp16 (its time and its pixel gap to fp32); bench/results/device.json gets the times, the
// provider and precision per session kind and the GPU's peak memory (nvidia-smi). Nothing is fetched: the CUDA provider libraries
// come with the install (gpu-runner/README.md, "CUDA provider libraries"). Without a GPU it says so in one line and
// exits 1. --cpu-smoke runs the same steps on the tiny pack on CPU (64 px, 2 steps), to check the script itself.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FinetuneOptions, GenerationParams } from '../contract/index.ts';
import { writeRandomCheckpoint } from '../gpu-runner/models/checkpoint/random-weights.ts';
import { SD15_TEXT_ENCODER_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from '../gpu-runner/models/checkpoint/sd15-configs.ts';
import { parseClipTextConfig } from '../gpu-runner/models/clip-text/config.ts';
import { clipTextInventory } from '../gpu-runner/models/clip-text/inventory.ts';
import { parseUnetConfig } from '../gpu-runner/models/unet/config.ts';
import { unetInventory } from '../gpu-runner/models/unet/inventory.ts';
import { planUnet } from '../gpu-runner/models/unet/plan.ts';
import { parseVaeConfig } from '../gpu-runner/models/vae/config.ts';
import { vaeInventory } from '../gpu-runner/models/vae/inventory.ts';
import { planVae } from '../gpu-runner/models/vae/plan.ts';
import { SD15_SCHEDULER_CONFIG } from '../gpu-runner/diffusion/schedulers/sd15-config.ts';
import { sharedSessionHost, shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import { ensureTinyPack, writeTokenizer } from '../gpu-runner/pack/write-tiny-pack.ts';
import { parseHypernetworkConfig } from '../gpu-runner/personalize/hypernetwork/config.ts';
import { writeInitialHypernetworkCheckpoint } from '../gpu-runner/personalize/hypernetwork/initial-checkpoint.ts';
import type { ExecutionContext, RgbImage } from '../gpu-runner/server/jobs/executor.ts';
import { ModelPackExecutor } from '../gpu-runner/server/executors/model-pack-executor.ts';
import { writeResults } from './report.ts';

const SMOKE = process.argv.includes('--cpu-smoke');
/** The issue's figures: a 512 px, 25-step generation; a personalization of 40 relax steps. */
const RUN = SMOKE ? { side: 64, steps: 2, relaxSteps: 2 } : { side: 512, steps: 25, relaxSteps: 40 };
const PACK_DIR = fileURLToPath(new URL('../.cache/device-check/sd15-random/', import.meta.url));
const CUDA_PROVIDER_LIBRARY = 'libonnxruntime_providers_cuda.so';

/** One line and a non-zero exit: what a person running the check reads first. */
function fail(message: string): never {
  process.stderr.write(`check:device: ${message}\n`);
  process.exit(1);
}

function log(message: string): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), msg: message })}\n`);
}

interface Gpu {
  name: string;
  memoryTotalMiB: number;
  driver: string;
}

/** The NVIDIA GPUs nvidia-smi lists, or why there are none (no nvidia-smi, no driver, no device). */
function nvidiaGpus(): Gpu[] | { reason: string } {
  let out: string;
  try {
    out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') return { reason: 'nvidia-smi is not installed' };
    const said = `${e.stdout ?? ''} ${e.stderr ?? ''}`.trim().split('\n')[0];
    return { reason: `nvidia-smi failed${said ? `: ${said}` : ''}` };
  }
  const gpus = out
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [name = '', memory = '', driver = ''] = line.split(',').map((part) => part.trim());
      return { name, memoryTotalMiB: Number(memory), driver };
    });
  return gpus.length > 0 ? gpus : { reason: 'nvidia-smi lists no GPU' };
}

/** Samples the GPU's used memory every half second while `work` runs; nvidia-smi's device-wide figure, in MiB. */
async function withPeakGpuMemory<T>(work: () => Promise<T>): Promise<{ result: T; peakMiB: number | null }> {
  const sampler = spawn('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-lms', '500'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let peak: number | null = null;
  sampler.on('error', () => undefined);
  sampler.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      const used = Number(line.split(',')[0]);
      if (line.trim() !== '' && Number.isFinite(used)) peak = Math.max(peak ?? 0, used);
    }
  });
  try {
    return { result: await work(), peakMiB: peak };
  } finally {
    sampler.kill();
  }
}

/** A full-size SD 1.5-architecture pack of random weights with the default hypernetwork, written once. */
function fullSizePack(dir: string): string {
  const done = join(dir, '.complete');
  if (existsSync(done)) return dir;
  rmSync(dir, { recursive: true, force: true });
  const json = (path: string, value: unknown) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), JSON.stringify(value, null, 2));
  };
  json('model_index.json', {
    _class_name: 'StableDiffusionPipeline',
    _hdb_pack_id: 'sd15-random-device-check',
    scheduler: ['diffusers', 'PNDMScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  });
  json('unet/config.json', SD15_UNET_CONFIG);
  json('text_encoder/config.json', SD15_TEXT_ENCODER_CONFIG);
  json('vae/config.json', SD15_VAE_CONFIG);
  json('scheduler/scheduler_config.json', SD15_SCHEDULER_CONFIG);
  writeTokenizer(join(dir, 'tokenizer'));
  const unet = planUnet(parseUnetConfig(SD15_UNET_CONFIG));
  const textEncoder = parseClipTextConfig(SD15_TEXT_ENCODER_CONFIG);
  writeRandomCheckpoint(join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), unetInventory(unet), 1);
  writeRandomCheckpoint(join(dir, 'text_encoder', 'model.safetensors'), clipTextInventory(textEncoder), 2);
  writeRandomCheckpoint(join(dir, 'vae', 'diffusion_pytorch_model.safetensors'), vaeInventory(planVae(parseVaeConfig(SD15_VAE_CONFIG))), 3);
  writeInitialHypernetworkCheckpoint(join(dir, 'hypernetwork', 'model.safetensors'), { unet, textEncoder }, { config: parseHypernetworkConfig({}), seed: 4 });
  writeFileSync(done, '');
  return dir;
}

/**
 * The provider each session kind reports. The session host records it per labelled kind (`sessionKinds()`, where the
 * engine offers it); otherwise the executor's one provider (its description) stands for generation.
 */
function sessionProviders(executor: ModelPackExecutor): Record<string, string> {
  const host = sharedSessionHost() as unknown as { sessionKinds?: () => Record<string, { executionProvider?: string; error?: string }> };
  const kinds = typeof host.sessionKinds === 'function' ? host.sessionKinds() : {};
  if (Object.keys(kinds).length > 0) {
    return Object.fromEntries(Object.entries(kinds).map(([kind, status]) => [kind, status.executionProvider ?? `failed: ${status.error ?? 'unknown'}`]));
  }
  return { generation: /execution provider (\w+)/.exec(executor.description)?.[1] ?? 'unreported' };
}

const seconds = (ms: number) => Math.round(ms / 10) / 100;

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; s: number }> {
  const start = performance.now();
  const result = await work();
  return { result, s: seconds(performance.now() - start) };
}

/** The precision each session kind last opened with (the session host reports it next to the provider). */
function sessionPrecisions(): Record<string, string> {
  return Object.fromEntries(Object.entries(sharedSessionHost().sessionKinds()).map(([kind, status]) => [kind, status.precision ?? 'unreported']));
}

/** Largest and mean absolute difference of two 8-bit images. */
function pixelGap(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const gap = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, gap);
    sum += gap;
  }
  return { max, mean: Math.round((sum / a.length) * 1000) / 1000 };
}

async function main(): Promise<void> {
  let gpu: Gpu | null = null;
  if (!SMOKE) {
    const gpus = nvidiaGpus();
    if (!Array.isArray(gpus)) fail(`no NVIDIA GPU on this machine (${gpus.reason}); run it on the GPU host`);
    gpu = gpus[0]!;
    const ortDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const library = join(ortDir, 'bin', 'napi-v6', platform(), arch(), CUDA_PROVIDER_LIBRARY);
    if (!existsSync(library)) fail(`${CUDA_PROVIDER_LIBRARY} is not installed beside onnxruntime-node (see gpu-runner/README.md, "CUDA provider libraries")`);
  }
  const ortVersion = (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
  log(SMOKE ? 'cpu smoke run on the tiny pack' : `GPU ${gpu!.name} (${gpu!.memoryTotalMiB} MiB, driver ${gpu!.driver}), onnxruntime-node ${ortVersion}`);

  const build = await timed(async () => (SMOKE ? ensureTinyPack() : fullSizePack(PACK_DIR)));
  log(`pack ready in ${build.s} s: ${build.result}`);
  const provider = SMOKE ? 'cpu' : 'cuda';
  const executor = new ModelPackExecutor({ modelDir: build.result, executionProvider: provider, samplingPrecision: 'fp32' });
  // The same pack with fp16 sampling graphs: only generations run there (personalization is fp32 in both).
  const fp16Executor = new ModelPackExecutor({ modelDir: build.result, executionProvider: provider, samplingPrecision: 'fp16' });
  const context: ExecutionContext = { signal: new AbortController().signal, reportProgress: () => undefined };
  const face: RgbImage = {
    width: RUN.side,
    height: RUN.side,
    channels: 3,
    data: new Uint8Array(RUN.side * RUN.side * 3).map((_, i) => (i * 7) % 251),
  };
  const resultsName = SMOKE ? 'device-cpu-smoke' : 'device';
  const describeProviders = (providers: Record<string, string>) => Object.entries(providers).map(([kind, provider]) => `${kind} → ${provider}`).join(', ');
  try {
    const measured = withPeakGpuMemory(async () => {
      const warmup = await timed(() => executor.warmup());
      log(`warm in ${warmup.s} s: ${executor.description}`);
      const personalization = await timed(() =>
        executor.personalize(
          {
            jobId: 'check-device-personalize',
            method: 'hyperdreambooth',
            images: [face],
            finetune: FinetuneOptions.parse({ steps: RUN.relaxSteps }),
            outputs: [{ format: 'lidb', dtype: 'fp32' }],
          },
          context,
        ),
      );
      log(`personalization (prediction + ${RUN.relaxSteps} relax steps) in ${personalization.s} s`);
      const weights = { format: 'lidb' as const, dtype: 'fp32' as const, bytes: personalization.result.files[0]!.bytes };
      const params = GenerationParams.parse({ prompt: 'a photo of [V] face', steps: RUN.steps, width: RUN.side, height: RUN.side, seed: 1 });
      const generation = await timed(() =>
        executor.generate({ jobId: 'check-device-generate', weights, baseModelId: personalization.result.baseModelId, params }, context),
      );
      log(`generation (${RUN.side} px, ${RUN.steps} steps, fp32) in ${generation.s} s`);
      const precisions = sessionPrecisions();
      await fp16Executor.warmup();
      const fp16Generation = await timed(() =>
        fp16Executor.generate({ jobId: 'check-device-generate-fp16', weights, baseModelId: personalization.result.baseModelId, params }, context),
      );
      const gap = pixelGap(generation.result.images[0]!.image.data, fp16Generation.result.images[0]!.image.data);
      log(`generation (${RUN.side} px, ${RUN.steps} steps, fp16) in ${fp16Generation.s} s; pixel gap to fp32: max ${gap.max}, mean ${gap.mean}`);
      return {
        warmupS: warmup.s,
        personalizationS: personalization.s,
        generationS: generation.s,
        fp16: { seconds: fp16Generation.s, pixelGap: gap, precisions: { fp32Run: precisions, fp16Run: sessionPrecisions() } },
      };
    });
    const { result, peakMiB } = await measured.catch((error: unknown) => {
      // A session kind that cannot run on CUDA fails its job: keep what was learned, then say it in one line.
      const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
      const providers = sessionProviders(executor);
      writeResults(resultsName, { gpu, onnxruntimeNode: ortVersion, providers, error: message });
      return fail(`the run failed: ${message} (providers so far: ${describeProviders(providers) || 'none reported'})`);
    });
    const providers = sessionProviders(executor);
    const notCuda = Object.entries(providers).filter(([, provider]) => provider !== (SMOKE ? 'cpu' : 'cuda'));
    const path = writeResults(resultsName, {
      gpu,
      onnxruntimeNode: ortVersion,
      providers,
      packBuildS: build.s,
      warmupS: result.warmupS,
      personalization: { relaxSteps: RUN.relaxSteps, seconds: result.personalizationS },
      generation: { side: RUN.side, steps: RUN.steps, seconds: result.generationS },
      generationFp16: result.fp16,
      peakGpuMemoryMiB: peakMiB,
    });
    log(`wrote ${path}`);
    if (notCuda.length > 0) fail(`session kind(s) not on ${SMOKE ? 'cpu' : 'CUDA'}: ${describeProviders(Object.fromEntries(notCuda))}`);
  } finally {
    await executor.close();
    await fp16Executor.close();
    await shutdownSharedSessionHost();
  }
}

await main();
