// `npm run bench:sd-unet`: UNet forward time on CPU, for the tiny fixture config (its real checkpoint) and
// for the full-size SD 1.5 UNet at 64×64 latents with random weights kept as external data inside a > 2 GB
// safetensors file (the path a real checkpoint takes). Flags: --tiny-only, --cfg (also batch 2, as classifier-free
// guidance runs it), --keep (keep the full-size checkpoint in the cache folder for the next run).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openUnetFolder } from '../gpu-runner/models/checkpoint/diffusers-folder.ts';
import { writeRandomCheckpoint } from '../gpu-runner/models/checkpoint/random-weights.ts';
import { ModelWeights } from '../gpu-runner/models/checkpoint/weights.ts';
import { parameterCount } from '../gpu-runner/models/inventory.ts';
import { externalParams, inlineParams } from '../gpu-runner/models/params.ts';
import { float32Feed, type GraphSession, openGraphSession } from '../gpu-runner/models/session.ts';
import { buildUnetGraph, UNET_OUTPUT } from '../gpu-runner/models/unet/build.ts';
import { parseUnetConfig } from '../gpu-runner/models/unet/config.ts';
import { unetInventory } from '../gpu-runner/models/unet/inventory.ts';
import { planUnet, type UnetPlan } from '../gpu-runner/models/unet/plan.ts';
import { saveModel } from '../gpu-runner/onnx/index.ts';
import { referencePath } from '../test/fixtures/reference-dir.ts';
import { medianMs, printTable, type Row, writeResults } from './report.ts';

const TINY_ONLY = process.argv.includes('--tiny-only');
const CFG = process.argv.includes('--cfg');
const KEEP = process.argv.includes('--keep');
/** SD 1.5 at 512 px: 64×64 latents, 77 text tokens of width 768. */
const FULL_LATENT_SIZE = 64;
const TEXT_LENGTH = 77;
const CACHE_DIR = fileURLToPath(new URL('../.cache/bench-sd-unet/', import.meta.url));

function randomFeed(dims: number[], seed: number) {
  const count = dims.reduce((a, b) => a * b, 1);
  return float32Feed(dims, Float32Array.from({ length: count }, (_, i) => Math.sin((i + 1) * 12.9898 + seed) * 0.8));
}

function unetFeeds(plan: UnetPlan, batch: number, size: number) {
  return {
    sample: randomFeed([batch, plan.config.inChannels, size, size], 1),
    timestep: float32Feed([batch], new Float32Array(batch).fill(500)),
    encoder_hidden_states: randomFeed([batch, TEXT_LENGTH, plan.config.crossAttentionDim[0]!], 2),
  };
}

async function timeRuns(session: GraphSession, feeds: ReturnType<typeof unetFeeds>, repeats: number) {
  const t0 = performance.now();
  const first = await session.run(feeds);
  const firstMs = performance.now() - t0;
  const out = first[UNET_OUTPUT]!;
  if (!out.every(Number.isFinite)) throw new Error('UNet output holds non-finite values');
  // CPU time (all threads) of the steady runs: on a shared machine wall time depends on the load, CPU time much less.
  const cpuBefore = process.cpuUsage();
  const steadyMs = repeats > 0 ? await medianMs(() => session.run(feeds), { warmup: 0, repeats }) : firstMs;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMsPerRun = repeats > 0 ? (cpu.user + cpu.system) / 1000 / repeats : null;
  return { firstMs, steadyMs, cpuMsPerRun };
}

async function benchTiny(): Promise<Row[]> {
  const unet = openUnetFolder(referencePath('sd15-tiny', 'unet'));
  const rows: Row[] = [];
  for (const batch of [1, 2]) {
    const { graph } = buildUnetGraph(unet.plan, inlineParams(unet.weights), { batch, height: 8, width: 8, textLength: TEXT_LENGTH });
    const session = await openGraphSession(graph);
    const { steadyMs, cpuMsPerRun } = await timeRuns(session, unetFeeds(unet.plan, batch, 8), 50);
    await session.release();
    rows.push({ model: 'tiny (sd15-tiny config)', params: parameterCount(unetInventory(unet.plan)), batch, latents: '8×8', forwardMs: steadyMs, cpuMsPerRun });
  }
  return rows;
}

async function benchFull(): Promise<{ rows: Row[]; details: Record<string, number> }> {
  const manifest = JSON.parse(readFileSync(referencePath('sd15-manifest', 'unet_manifest.json'), 'utf8')) as { input_config: unknown };
  const plan = planUnet(parseUnetConfig(manifest.input_config));
  const inventory = unetInventory(plan);
  mkdirSync(CACHE_DIR, { recursive: true });
  const weightsFile = join(CACHE_DIR, 'diffusion_pytorch_model.safetensors');
  const details: Record<string, number> = { params: parameterCount(inventory) };

  let t0 = performance.now();
  const reused = existsSync(weightsFile);
  if (!reused) writeRandomCheckpoint(weightsFile, inventory, 0);
  if (!reused) details.writeWeightsMs = performance.now() - t0;
  details.weightsBytes = statSync(weightsFile).size;

  const rows: Row[] = [];
  try {
    for (const batch of CFG ? [1, 2] : [1]) {
      t0 = performance.now();
      const weights = ModelWeights.open([weightsFile], inventory, { label: 'unet' });
      const { graph } = buildUnetGraph(plan, externalParams(weights, CACHE_DIR), {
        batch,
        height: FULL_LATENT_SIZE,
        width: FULL_LATENT_SIZE,
        textLength: TEXT_LENGTH,
      });
      const modelPath = saveModel(graph, CACHE_DIR, `unet-b${batch}.onnx`);
      const buildMs = performance.now() - t0;
      t0 = performance.now();
      const session = await openGraphSession(modelPath);
      const sessionMs = performance.now() - t0;
      // A full-size forward takes tens of seconds here: one run after the first is the steady-state figure.
      const { firstMs, steadyMs, cpuMsPerRun } = await timeRuns(session, unetFeeds(plan, batch, FULL_LATENT_SIZE), 1);
      await session.release();
      rows.push({
        model: 'SD 1.5 full (random weights, external data)',
        params: details.params!,
        batch,
        latents: `${FULL_LATENT_SIZE}×${FULL_LATENT_SIZE}`,
        forwardMs: steadyMs,
        cpuMsPerRun,
        firstRunMs: firstMs,
        graphBuildAndSaveMs: buildMs,
        sessionCreateMs: sessionMs,
        nodes: graph.nodes.length,
        onnxFileBytes: statSync(modelPath).size,
      });
    }
  } finally {
    if (!KEEP) rmSync(CACHE_DIR, { recursive: true, force: true });
  }
  return { rows, details };
}

export interface UnetBenchResults {
  /** 1-minute load average before and after: the machine is shared, so read the times with it. */
  loadAverage: { before: number; after: number };
  tiny: Row[];
  full: Row[] | null;
  fullDetails: Record<string, number> | null;
}

/** The UNet part of the SD benchmark; `bench/sd.ts` may call it and fold the rows into its own table. */
export async function runUnetBench(options: { tinyOnly?: boolean } = {}): Promise<UnetBenchResults> {
  const before = loadavg()[0]!;
  const tiny = await benchTiny();
  printTable('UNet forward on CPU (tiny)', tiny);
  if (options.tinyOnly) return { loadAverage: { before, after: loadavg()[0]! }, tiny, full: null, fullDetails: null };
  const full = await benchFull();
  printTable('UNet forward on CPU (full-size SD 1.5)', full.rows);
  const written = full.details.writeWeightsMs === undefined ? 'reused from --keep' : `written in ${(full.details.writeWeightsMs / 1000).toFixed(1)} s`;
  console.log(`weights: ${(full.details.weightsBytes! / 2 ** 30).toFixed(2)} GiB, ${written}`);
  return { loadAverage: { before, after: loadavg()[0]! }, tiny, full: full.rows, fullDetails: full.details };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await runUnetBench({ tinyOnly: TINY_ONLY });
  console.log(`\nresults: ${writeResults('sd-unet', results)}`);
}
