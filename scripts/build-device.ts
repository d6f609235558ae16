// Builds the web client's "on this device" mode into edge/client/ (served by Workers Static Assets, wrangler.toml):
// - build/device-worker.js: the runner's library bundled for the browser by esbuild (gpu-runner/browser/). Only what
//   touches Node is swapped: the session host for onnxruntime-web's (gpu-runner/onnx/runtime/browser/), node:fs for
//   the pack held in memory, sharp for its raw-pixel resize; onnxruntime-node's Tensor is onnxruntime-web's.
// - build/ort-<version>/: onnxruntime-web's WebAssembly (SIMD, threaded) and its loader, and its WebGPU build (the
//   JSEP API module, loader and WebAssembly, the last in parts), which the device worker loads only to sample on WebGPU;
// - pack/<id>-<digest>/: the default model pack's files (immutable under a folder named by their digest, so edge/client/_headers
//   lets browsers keep them), and build/pack.json naming them with the pack's example prompts.
// Usage: tsx scripts/build-device.ts
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { defaultModelDir } from '../gpu-runner/pack/default-pack.ts';
import { HYPERNETWORK_CHECKPOINT, PACK_CARD_FOLDER, packDigest } from '../gpu-runner/pack/model-pack.ts';
import { packIndex } from '../gpu-runner/pack/pack-index.ts';
import { WORLD_PACK_ID } from '../gpu-runner/pack/world-pack.ts';
import { DEFAULT_IDENTIFIER } from '../gpu-runner/personalize/finetune/fast-finetune.ts';
import { PROMPT_CONTEXTS } from '../gpu-runner/world/benchmark/prompts.ts';
import { captionWithIdentifier } from '../gpu-runner/world/caption.ts';
import type { PackManifest } from '../gpu-runner/browser/protocol.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLIENT = join(ROOT, 'edge', 'client');
const BUILD = join(CLIENT, 'build');
const PACKS = join(CLIENT, 'pack');
const BROWSER = join(ROOT, 'gpu-runner', 'browser');
const SHIMS = join(BROWSER, 'node-shims');
const ORT_DIST = join(ROOT, 'node_modules', 'onnxruntime-web', 'dist');
const ORT_VERSION = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'onnxruntime-web', 'package.json'), 'utf8')) as { version: string }).version;
/** What ort.wasm.min.mjs loads at run time (the SIMD + threads build; it runs single-threaded where threads are not allowed). */
const ORT_FILES = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
/**
 * onnxruntime-web's WebGPU build: the API (`onnxruntime-web`'s default entry, JSEP) and the loader it imports. Not
 * `onnxruntime-web/webgpu`, which is the native WebGPU execution provider on an asyncify build; JSEP is the one the
 * WebGPU browsers run without flags.
 */
const ORT_WEBGPU_FILES = { api: 'ort.min.mjs', loader: 'ort-wasm-simd-threaded.jsep.mjs', wasm: 'ort-wasm-simd-threaded.jsep.wasm' };
/**
 * Workers Static Assets refuses files over 25 MiB (`wrangler deploy`: "Asset too large"); the JSEP WebAssembly is
 * 28.3 MB, so it is served in parts of at most this many bytes and joined in the worker (webgpu-runtime.ts).
 */
export const ASSET_PART_BYTES = 20 * 1024 * 1024;
/** Paths (relative to the served pack) of the files the pack loader reads and the pack digest covers. */
const PACK_FILE = /\.(safetensors|json|txt)$/;

const NODE_SHIMS: Readonly<Record<string, string>> = {
  fs: 'fs.ts',
  'fs/promises': 'fs.ts',
  path: 'path.ts',
  crypto: 'crypto.ts',
  sharp: 'sharp.ts',
};

/** Node built-ins, sharp and onnxruntime-node resolved to their browser stand-ins. */
const browserSwaps: Plugin = {
  name: 'browser-swaps',
  setup(b) {
    const runtime = join(ROOT, 'gpu-runner', 'onnx', 'runtime');
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (name in NODE_SHIMS) return { path: join(SHIMS, NODE_SHIMS[name]!) };
      if (args.path.startsWith('node:') || ['os', 'url', 'module', 'worker_threads', 'child_process', 'util', 'stream', 'zlib', 'readline'].includes(name)) {
        return { path: join(SHIMS, 'misc.ts') };
      }
      return undefined;
    });
    b.onResolve({ filter: /^onnxruntime-node$/ }, () => b.resolve('onnxruntime-web/wasm', { kind: 'import-statement', resolveDir: ROOT }).then((r) => ({ path: r.path })));
    // The browser host re-exports the Node module's helpers, so only its own import reaches the original.
    const browserHost = join(runtime, 'browser', 'session-host.ts');
    b.onResolve({ filter: /session-host\.ts$/ }, (args) => {
      const target = join(args.resolveDir, args.path);
      return target === join(runtime, 'session-host.ts') && args.importer !== browserHost ? { path: browserHost } : undefined;
    });
  },
};

function packFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory() && folder === dir && entry.name === PACK_CARD_FOLDER) continue;
      if (entry.isDirectory() && !entry.name.startsWith('.')) walk(path);
      else if (entry.isFile() && PACK_FILE.test(entry.name)) out.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/** Copies `source` into `dir` as `<name>.part<i>` files of at most ASSET_PART_BYTES; returns their names in order. */
function writeInParts(source: string, dir: string): string[] {
  const bytes = readFileSync(source);
  const name = source.split(sep).pop()!;
  const parts: string[] = [];
  for (let offset = 0, i = 0; offset < bytes.byteLength; offset += ASSET_PART_BYTES, i++) {
    parts.push(`${name}.part${i}`);
    writeFileSync(join(dir, parts[i]!), bytes.subarray(offset, offset + ASSET_PART_BYTES));
  }
  return parts;
}

/**
 * The served pack's folder name. The folder is cached as immutable, so its name must change whenever any file in it
 * does; the pack digest alone does not do that, since it leaves the hypernetwork out (a retrained hypernetwork fits the
 * same base model, and weights name the base model by that digest). The name adds the hypernetwork's bytes.
 */
export async function servedPackFolder(dir: string): Promise<string> {
  const id = packIndex(dir).id ?? 'pack';
  const served = createHash('sha256').update(await packDigest(dir)).update(readFileSync(join(dir, HYPERNETWORK_CHECKPOINT))).digest('hex');
  return `${id}-${served.slice(0, 12)}`;
}

export async function buildDevice(options: { packDir?: string; quiet?: boolean } = {}): Promise<PackManifest> {
  const started = performance.now();
  mkdirSync(BUILD, { recursive: true });
  const result = await build({
    entryPoints: [join(BROWSER, 'device-worker.ts')],
    outfile: join(BUILD, 'device-worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    // onnxruntime-web loads its WebAssembly from `env.wasm.wasmPaths` instead of carrying it inline.
    conditions: ['onnxruntime-web-use-extern-wasm'],
    inject: [join(SHIMS, 'process.ts')],
    plugins: [browserSwaps],
    logLevel: 'warning',
    metafile: true,
  });
  if (result.errors.length > 0) throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join('; ')}`);

  const ortDir = join(BUILD, `ort-${ORT_VERSION}`);
  mkdirSync(ortDir, { recursive: true });
  for (const file of [...ORT_FILES, ORT_WEBGPU_FILES.api, ORT_WEBGPU_FILES.loader]) copyFileSync(join(ORT_DIST, file), join(ortDir, file));
  const wasmParts = writeInParts(join(ORT_DIST, ORT_WEBGPU_FILES.wasm), ortDir);

  const dir = options.packDir ?? defaultModelDir();
  const sha256 = await packDigest(dir);
  const id = packIndex(dir).id ?? 'pack';
  const files = packFiles(dir);
  if (!files.includes(HYPERNETWORK_CHECKPOINT.split(sep).join('/'))) throw new Error(`${dir} has no ${HYPERNETWORK_CHECKPOINT}: the device mode predicts with the pack's hypernetwork`);
  const folder = await servedPackFolder(dir);
  const target = join(PACKS, folder);
  // Older packs' folders go: one digest is served at a time.
  if (existsSync(PACKS)) for (const old of readdirSync(PACKS)) if (old !== folder) rmSync(join(PACKS, old), { recursive: true, force: true });
  for (const file of files) {
    mkdirSync(dirname(join(target, file)), { recursive: true });
    copyFileSync(join(dir, file), join(target, file));
  }
  const manifest: PackManifest = {
    id,
    sha256,
    base: `../pack/${folder}/`,
    files: files.map((path) => ({ path, bytes: statSync(join(dir, path)).size })),
    // The world's own contexts (backgrounds, hats, glasses, sketch and pixel-art styles): what the world pack was trained
    // to draw, not the paper's prompts, which it has never seen.
    examples: id === WORLD_PACK_ID ? PROMPT_CONTEXTS.map((context) => captionWithIdentifier(DEFAULT_IDENTIFIER, context)) : [`a photo of a ${DEFAULT_IDENTIFIER} face`],
    ortBase: `ort-${ORT_VERSION}/`,
    ortWebGpu: { api: ORT_WEBGPU_FILES.api, wasmParts },
    identifier: DEFAULT_IDENTIFIER,
  };
  writeFileSync(join(BUILD, 'pack.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  if (!options.quiet) {
    const bundleBytes = statSync(join(BUILD, 'device-worker.js')).size;
    const packBytes = manifest.files.reduce((sum, file) => sum + file.bytes, 0);
    process.stdout.write(
      `${JSON.stringify({ event: 'device.built', bundleBytes, packBytes, pack: folder, ort: ORT_VERSION, ms: Math.round(performance.now() - started) })}\n`,
    );
  }
  return manifest;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildDevice();
