// The web client's "on this device" mode: a Web Worker running the runner's own library (the pack loader, predict and
// the relax finetune through `personalize`, the sampler, the weight file writers) on onnxruntime-web. Nothing here
// re-implements the method: the bundle (scripts/build-device.ts) swaps only what touches Node (the session host, the
// file system holding the pack, sharp's raw resize) for browser versions, so the face photo never leaves the page.
import * as ort from 'onnxruntime-web/wasm';
import { generate } from '../diffusion/sampler.ts';
import { browserBackend, sharedSessionHost } from '../onnx/runtime/browser/session-host.ts';
import { loadModelPack, schedulerChoice, type LoadedPack } from '../pack/model-pack.ts';
import { fastFinetune, predict } from '../personalize/api.ts';
import { PersonalizationCanceled } from '../personalize/finetune/fast-finetune.ts';
import { PersonalizedSessions } from '../personalize/personalized-diffusion.ts';
import { exportLora } from '../personalize/weights/lora-export.ts';
import { encodeNativeWeights } from '../personalize/weights/native-format.ts';
import type { PersonalizedWeights } from '../personalize/weights/personalized-weights.ts';
import { chooseSampling, describeAdapter, SAMPLING_KINDS, type AdapterLike, type BackendPreference, type SamplingChoice } from './backend-choice.ts';
import { weightFactors } from './factors.ts';
import { mountFiles } from './node-shims/fs.ts';
import type { Backend, DeviceReply, DeviceRequest, PackManifest, RgbPixels } from './protocol.ts';
import { loadWebGpuRuntime } from './webgpu-runtime.ts';

// The worker's globals (the project's lib is ES2023 without DOM or WebWorker declarations).
declare const self: {
  onmessage: ((event: { data: DeviceRequest }) => void) | null;
  postMessage(message: DeviceReply, transfer?: ArrayBuffer[]): void;
  location: { href: string };
  crossOriginIsolated?: boolean;
  navigator: { hardwareConcurrency?: number; gpu?: { requestAdapter(): Promise<(AdapterLike & object) | null> } };
};

/** Where the pack's files are mounted in the bundle's in-memory file system. */
const PACK_ROOT = '/pack';
/** onnxruntime-web's default cap: it uses at most 4 threads, and half the cores otherwise. */
const MAX_THREADS = 4;
/**
 * The browser samples with float32 graphs on either backend: the runner's fp16 choice is for CUDA (onnx/runtime's
 * README, precision), and WebGPU's float16 needs the adapter's shader-f16 feature, which nothing here measures.
 */
const BROWSER_SAMPLING_PRECISION = 'fp32';

interface State {
  pack: LoadedPack;
  manifest: PackManifest;
  sessions: PersonalizedSessions;
  weights?: PersonalizedWeights;
}
let state: State | undefined;

const reply = (message: DeviceReply, transfer: ArrayBuffer[] = []) => self.postMessage(message, transfer);

function loaded(): State {
  if (!state) throw new Error('the pack is not loaded');
  return state;
}

async function requestAdapter(): Promise<{ adapter: object | null; failure?: string }> {
  if (!self.navigator.gpu) return { adapter: null, failure: 'the browser has no WebGPU (navigator.gpu)' };
  try {
    return { adapter: await self.navigator.gpu.requestAdapter() };
  } catch (error) {
    return { adapter: null, failure: `requesting a WebGPU adapter failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/**
 * Chooses where sampling runs and, for WebGPU, starts onnxruntime-web's WebGPU build (in parallel with the pack's
 * download). A WebGPU that fails to start leaves sampling on WebAssembly with the reason shown, never silently.
 */
async function chooseBackend(preference: BackendPreference, ortBase: string, manifest: PackManifest, threads: number): Promise<Omit<Backend, 'threads' | 'simd' | 'name'>> {
  const { adapter, failure } = await requestAdapter();
  const report = failure ? ({ available: false, reason: failure } as const) : describeAdapter(adapter as AdapterLike | null);
  let sampling: SamplingChoice = chooseSampling(preference, report);
  if (sampling.backend === 'webgpu') {
    try {
      const api = await loadWebGpuRuntime({ base: ortBase, files: manifest.ortWebGpu, adapter, threads });
      sharedSessionHost().useWebGpu({ ort: api, kinds: SAMPLING_KINDS });
    } catch (error) {
      sampling = { backend: 'wasm', reason: `WebGPU failed to start: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  return { crossOriginIsolated: self.crossOriginIsolated === true, webgpu: report.available, preference, adapter: report, sampling };
}

async function load(request: Extract<DeviceRequest, { type: 'load' }>): Promise<void> {
  const started = performance.now();
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages (COOP + COEP headers).
  const manifestUrl = new URL(request.manifestUrl, self.location.href);
  const manifest = (await (await fetch(manifestUrl.href)).json()) as PackManifest;
  const base = new URL(manifest.base, manifestUrl).href;
  // onnxruntime-web's own files, served beside the bundle (scripts/build-device.ts copies them).
  const ortBase = new URL(manifest.ortBase, manifestUrl).href;
  ort.env.wasm.wasmPaths = ortBase;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.max(1, Math.min(MAX_THREADS, Math.floor((self.navigator.hardwareConcurrency ?? 2) / 2))) : 1;
  const backendChosen = chooseBackend(request.backend ?? 'auto', ortBase, manifest, ort.env.wasm.numThreads);
  const total = manifest.files.reduce((sum, file) => sum + file.bytes, 0);
  let done = 0;
  const files = await Promise.all(
    manifest.files.map(async (file) => {
      const response = await fetch(new URL(file.path, base).href);
      if (!response.ok) throw new Error(`pack file ${file.path}: ${response.status} ${response.statusText}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      done += bytes.byteLength;
      reply({ id: request.id, type: 'load-progress', loaded: done, total });
      return [file.path, bytes] as const;
    }),
  );
  mountFiles(PACK_ROOT, files);
  const warnings: string[] = [];
  // Inline weights: the browser has no folder to save graphs beside external data (and the world pack is 24 MB).
  const pack = await loadModelPack(PACK_ROOT, (message) => warnings.push(message), 'inline');
  if (pack.sha256 !== manifest.sha256) throw new Error(`the pack's digest ${pack.sha256.slice(0, 12)}… differs from the manifest's ${manifest.sha256.slice(0, 12)}…`);
  state = { pack, manifest, sessions: new PersonalizedSessions(pack.model, undefined, {}, 'auto', BROWSER_SAMPLING_PRECISION) };
  // What came over the network (0 for files from the browser's cache), from the worker's resource timings.
  const transferred = performance
    .getEntriesByType('resource')
    .filter((entry) => entry.name.startsWith(base))
    .reduce((sum, entry) => sum + ((entry as { transferSize?: number }).transferSize ?? 0), 0);
  const backend: Backend = { ...browserBackend(), ...(await backendChosen) };
  reply({ id: request.id, type: 'loaded', packId: pack.id, sha256: pack.sha256, backend, bytes: total, transferred, ms: performance.now() - started });
}

async function personalizeHere(request: Extract<DeviceRequest, { type: 'personalize' }>): Promise<void> {
  const { pack, manifest } = loaded();
  const cancel = request.cancel;
  // The library checks `aborted` before each step; the page sets the shared flag (its messages cannot reach this
  // thread while the steps run).
  const signal = { get aborted() { return cancel ? Atomics.load(cancel, 0) === 1 : false; } } as AbortSignal;
  const input = { image: request.image as RgbPixels };
  // HyperDreamBooth as the library's `personalize` runs it (personalize/api.ts), in its two calls, to time each.
  const started = performance.now();
  reply({ id: request.id, type: 'progress', stage: 'predict', step: 0, steps: request.steps });
  const prediction = await predict(pack.model, input);
  const predictMs = performance.now() - started;
  const stepEnds: number[] = [];
  const { weights, report } = await fastFinetune(pack.model, input, prediction, {
    steps: request.steps,
    seed: request.seed,
    identifier: manifest.identifier,
    ...(request.learningRate === undefined ? {} : { learningRate: request.learningRate }),
    signal,
    onProgress: (progress) => {
      stepEnds.push(performance.now());
      reply({ id: request.id, type: 'progress', stage: 'finetune', step: progress.step, steps: progress.steps, loss: progress.loss });
    },
  });
  loaded().weights = weights;
  const finetuneMs = performance.now() - started - predictMs;
  // The first step also encodes the face and opens the trainer; the later ones are the steady cost.
  const stepMs = stepEnds.slice(1).map((end, i) => end - stepEnds[i]!);
  const firstStepMs = stepEnds.length > 0 ? stepEnds[0]! - started - predictMs : 0;
  reply({ id: request.id, type: 'personalized', predictMs, finetuneMs, firstStepMs, stepMs, losses: report.losses, placements: sharedSessionHost().placements() });
}

/** One image of a decoded batch [batch, 3, H, W] in [−1, 1] → 8-bit RGB, as the runner's executor converts it. */
function toRgb(images: Float32Array, index: number, side: number): Uint8Array {
  const plane = side * side;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const offset = (index * 3 + c) * plane;
    for (let p = 0; p < plane; p++) data[p * 3 + c] = roundHalfEven(Math.min(1, Math.max(0, images[offset + p]! / 2 + 0.5)) * 255);
  }
  return data;
}

/** numpy's rounding (diffusers' postprocess), as the runner's executor rounds. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  if (value - floor !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

async function generateHere(request: Extract<DeviceRequest, { type: 'generate' }>): Promise<void> {
  const { pack, sessions, weights } = loaded();
  if (!weights) throw new Error('personalize first: there are no weights to generate with');
  const started = performance.now();
  // A pack that draws one size (the world pack: 32 px) is sampled at it; the page enlarges the pixels.
  const side = pack.nativeResolution ?? request.size;
  const result = await generate(sessions.modelsFor(weights), pack.tokenizer, {
    prompt: request.prompt,
    negativePrompt: request.negativePrompt ?? '',
    seed: request.seed,
    numInferenceSteps: request.steps,
    guidanceScale: request.guidanceScale,
    width: side,
    height: side,
    batchSize: request.numImages,
    scheduler: schedulerChoice(pack, 'ddim'),
  });
  const images = result.seeds.map((seed, index) => ({ width: side, height: side, data: toRgb(result.images, index, side), seed }));
  reply({ id: request.id, type: 'generated', images, ms: performance.now() - started, placements: sharedSessionHost().placements() }, images.map((image) => image.data.buffer as ArrayBuffer));
}

function weightsFile(request: Extract<DeviceRequest, { type: 'weights' }>): void {
  const { pack, weights } = loaded();
  if (!weights) throw new Error('personalize first: there are no weights to save');
  const dtype = request.dtype === 'fp16' ? 'F16' : 'F32';
  const bytes = request.format === 'lidb' ? encodeNativeWeights(weights, dtype) : exportLora(weights, pack.model.bases, 'kohya', dtype);
  reply({ id: request.id, type: 'weights', bytes, name: `${pack.id}-device-${request.format}.safetensors` }, [bytes.buffer as ArrayBuffer]);
}

async function handle(request: DeviceRequest): Promise<void> {
  switch (request.type) {
    case 'load':
      return load(request);
    case 'personalize':
      return personalizeHere(request);
    case 'generate':
      return generateHere(request);
    case 'weights':
      return weightsFile(request);
    case 'factors': {
      const { weights } = loaded();
      if (!weights) throw new Error('personalize first');
      return reply({ id: request.id, type: 'factors', factors: weightFactors(weights) });
    }
  }
}

// One request at a time, in order: the sessions run on this thread anyway.
let queue: Promise<void> = Promise.resolve();
self.onmessage = ({ data }) => {
  queue = queue.then(() =>
    handle(data).catch((error: unknown) =>
      reply({ id: data.id, type: 'failed', message: error instanceof Error ? error.message : String(error), canceled: error instanceof PersonalizationCanceled }),
    ),
  );
};
