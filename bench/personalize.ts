// `npm run bench:personalize`: on the tiny SD 1.5 configs on CPU, the time of predict, of one finetune step
// and of 40 steps (relax lora and lidb), of the dreambooth-lora baseline, and the weight-file sizes for SD 1.5's 200
// layers; the aux-basis build for SD 1.5 shapes; with --full, one finetune step (forward + backward of text encoder and
// UNet, and the Adam update) of full-size SD 1.5 with random weights through the finetune path with external weights
// (--latent=N latents, default 32 = 256 px; skipped with a message when memory is short; --full-only: that row alone);
// with --phase1 beside --full(-only), one phase-1 step of the default hypernetwork on the same full-size model
// (--phase1-only: that row alone, e.g. where memory holds one full-size session but not two);
// with --sweep, the finetune learning rate sweep.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { freemem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from '../gpu-runner/diffusion/tokenizer/clip-tokenizer.ts';
import { writeRandomCheckpoint } from '../gpu-runner/models/checkpoint/random-weights.ts';
import { ModelWeights } from '../gpu-runner/models/checkpoint/weights.ts';
import { parseClipTextConfig } from '../gpu-runner/models/clip-text/config.ts';
import { clipTextInventory } from '../gpu-runner/models/clip-text/inventory.ts';
import { externalParams } from '../gpu-runner/models/params.ts';
import { parseUnetConfig } from '../gpu-runner/models/unet/config.ts';
import { unetInventory } from '../gpu-runner/models/unet/inventory.ts';
import { planUnet } from '../gpu-runner/models/unet/plan.ts';
import { parseVaeConfig } from '../gpu-runner/models/vae/config.ts';
import { planVae } from '../gpu-runner/models/vae/plan.ts';
import { shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import { referencePath } from '../test/fixtures/reference-dir.ts';
import { fillGaussianFloat32, namedRng } from '../gpu-runner/random/index.ts';
import { fastFinetune, personalize, predict } from '../gpu-runner/personalize/api.ts';
import { optimizeOnSubject } from '../gpu-runner/personalize/finetune/fast-finetune.ts';
import { adaptedLayers } from '../gpu-runner/personalize/lidb/adapted-layers.ts';
import { generateAuxBasis } from '../gpu-runner/personalize/lidb/aux-basis.ts';
import { lidbSettings } from '../gpu-runner/personalize/lidb/settings.ts';
import { createPersonalizationModel, type PersonalizationModel } from '../gpu-runner/personalize/model.ts';
import type { EncodedSubject } from '../gpu-runner/personalize/finetune/subject.ts';
import { parseHypernetworkConfig } from '../gpu-runner/personalize/hypernetwork/config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams } from '../gpu-runner/personalize/hypernetwork/inventory.ts';
import { trainHypernetwork } from '../gpu-runner/personalize/phase1/train-hypernetwork.ts';
import { exportLora } from '../gpu-runner/personalize/weights/lora-export.ts';
import { tinyPersonalizationModel } from '../gpu-runner/personalize/testing/tiny-model.ts';
import { encodeNativeWeights } from '../gpu-runner/personalize/weights/native-format.ts';
import type { PersonalizedWeights, RelaxTerm } from '../gpu-runner/personalize/weights/personalized-weights.ts';
import { DEFAULT_WORLD, sampleAt, toRgbBytes } from '../gpu-runner/world/index.ts';
import { printTable, type Row, writeResults } from './report.ts';

/** --full-only: just the full-size row (written to bench/results/personalize-full.json). */
const FULL_ONLY = process.argv.includes('--full-only') || process.argv.includes('--phase1-only');
const FULL = FULL_ONLY || process.argv.includes('--full');
/**
 * Also sweep the finetune learning rate (docs/method.md: the benchmark decides it) on held-out draws of the subject.
 */
const SWEEP = process.argv.includes('--sweep');
/** With --full or --full-only: also one phase-1 step (the default ViT-B/16 hypernetwork → LiDB → text encoder + UNet). */
const PHASE1_ONLY = process.argv.includes('--phase1-only');
const PHASE1 = PHASE1_ONLY || process.argv.includes('--phase1');
const SWEEP_LEARNING_RATES = [3e-4, 1e-3, 3e-3, 1e-2];
const LATENT = Number(process.argv.find((a) => a.startsWith('--latent='))?.slice('--latent='.length) ?? 32);
const BASELINE_STEPS = Number(process.argv.find((a) => a.startsWith('--baseline-steps='))?.slice('--baseline-steps='.length) ?? 400);
const CACHE_DIR = fileURLToPath(new URL('../.cache/bench-personalize/', import.meta.url));

const manifestConfig = (file: string) => (JSON.parse(readFileSync(referencePath('sd15-manifest', file), 'utf8')) as { input_config: unknown }).input_config;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function benchTiny(): Promise<Row[]> {
  const model = tinyPersonalizationModel({ hypernetworkSeed: 7 });
  const sample = sampleAt(DEFAULT_WORLD, 'train', 0);
  const input = { image: { width: sample.image.width, height: sample.image.height, data: toRgbBytes(sample.image) } };
  const rows: Row[] = [];
  const first = await timed(() => predict(model, input));
  const steady = await timed(() => predict(model, input));
  rows.push({ what: 'predict (tiny hypernetwork, 92 layers)', firstMs: first.ms, steadyMs: steady.ms, steps: null, perStepMs: null, evalLossBefore: null, evalLossAfter: null });
  for (const relax of ['lora', 'lidb'] as const) {
    let stepTimes: number[] = [];
    let last = performance.now();
    const run = await timed(() =>
      fastFinetune(model, input, first.value, {
        steps: 40, relax, rank: 4, seed: 1, evaluationSamples: 8,
        onProgress: () => {
          const now = performance.now();
          stepTimes.push(now - last);
          last = now;
        },
      }),
    );
    stepTimes = stepTimes.slice(1);
    rows.push({
      what: `fastFinetune 40 steps, relax ${relax} rank 4`, firstMs: run.ms, steadyMs: null, steps: 40, perStepMs: median(stepTimes),
      evalLossBefore: run.value.report.evaluationBefore ?? null, evalLossAfter: run.value.report.evaluationAfter ?? null,
    });
  }
  if (SWEEP) {
    for (const relax of ['lora', 'lidb'] as const) {
      for (const learningRate of SWEEP_LEARNING_RATES) {
        const run = await timed(() => fastFinetune(model, input, first.value, { steps: 40, relax, rank: 4, seed: 1, learningRate, evaluationSamples: 8 }));
        rows.push({
          what: `sweep: relax ${relax} r 4, lr ${learningRate}`, firstMs: run.ms, steadyMs: null, steps: 40, perStepMs: null,
          evalLossBefore: run.value.report.evaluationBefore ?? null, evalLossAfter: run.value.report.evaluationAfter ?? null,
        });
      }
    }
  }
  const baseline = await timed(() => personalize(model, input, { method: 'dreambooth-lora', steps: BASELINE_STEPS, rank: 4, seed: 1, evaluationSamples: 8 }));
  const losses = baseline.value.report!.losses;
  rows.push({
    what: `dreambooth-lora baseline, rank 4`, firstMs: baseline.ms, steadyMs: null, steps: BASELINE_STEPS, perStepMs: baseline.ms / BASELINE_STEPS,
    evalLossBefore: baseline.value.report!.evaluationBefore ?? null, evalLossAfter: baseline.value.report!.evaluationAfter ?? null,
  });
  console.log(`dreambooth-lora training loss: first 10 mean ${(losses.slice(0, 10).reduce((a, b) => a + b, 0) / 10).toFixed(4)}, last 10 mean ${(losses.slice(-10).reduce((a, b) => a + b, 0) / 10).toFixed(4)}`);
  return rows;
}

function sd15Layers() {
  return adaptedLayers({ unet: planUnet(parseUnetConfig(manifestConfig('unet_manifest.json'))), textEncoder: parseClipTextConfig(manifestConfig('text_encoder_manifest.json')) });
}

function benchFiles(): { rows: Row[]; auxMs: number } {
  const layers = sd15Layers();
  const settings = lidbSettings();
  const t0 = performance.now();
  const bases = layers.map((layer) => generateAuxBasis(settings.auxSeed, layer, settings.a, settings.b));
  const auxMs = performance.now() - t0;
  const draw = (name: string, n: number) => fillGaussianFloat32(namedRng(1, name), n, 0.01);
  const lidb = layers.map((l, i) => ({ aTrain: draw(`${l.name}/a`, bases[i]!.aEff), bTrain: draw(`${l.name}/b`, bases[i]!.bEff) }));
  const weights = (relax?: RelaxTerm): PersonalizedWeights => ({
    settings, selection: { unet: [], textEncoder: [] }, layers, lidb, ...(relax ? { relax } : {}),
    meta: { baseModelId: 'runwayml/stable-diffusion-v1-5', baseModelSha256: '0'.repeat(64), method: 'hyperdreambooth', steps: 40 },
  });
  const relaxLidb: RelaxTerm = { mode: 'lidb', rank: 4, factors: layers.map((l, i) => ({ aTrain: draw(`${l.name}/ra`, 4 * bases[i]!.aEff), bTrain: draw(`${l.name}/rb`, 4 * bases[i]!.bEff) })) };
  const relaxLora: RelaxTerm = { mode: 'lora', rank: 4, factors: layers.map((l) => ({ rank: 4, down: draw(`${l.name}/rd`, 4 * l.inFeatures), up: draw(`${l.name}/ru`, 4 * l.outFeatures) })) };
  const rows: Row[] = [];
  for (const [label, w] of [['LiDB (r = 1)', weights()], ['LiDB + relax lidb r = 4', weights(relaxLidb)], ['LiDB + relax lora r = 4', weights(relaxLora)]] as const) {
    rows.push({
      file: `native, ${label}`,
      fp16Bytes: encodeNativeWeights(w, 'F16').byteLength,
      fp32Bytes: encodeNativeWeights(w, 'F32').byteLength,
      kohyaFp16Bytes: exportLora(w, bases, 'kohya', 'F16').byteLength,
    });
  }
  return { rows, auxMs };
}

/**
 * Memory a full-size finetune step needs: the fp32 weights onnxruntime loads (UNet 3.4 GB + text encoder 0.5 GB, and
 * the process) plus the activations kept for the backward pass, which scale with the latent area. Peak RSS measured
 * with `--full-only --latent=64`: 20.0 GB.
 */
const FULL_STEP_WEIGHT_BYTES = 4.2e9;
const FULL_STEP_ACTIVATION_BYTES_AT_64 = 15.8e9;
const FULL_STEPS = 3;

function availableMemoryBytes(): number {
  const line = readFileSync('/proc/meminfo', 'utf8').split('\n').find((l) => l.startsWith('MemAvailable:'));
  return line ? Number(line.split(/\s+/)[1]) * 1024 : freemem();
}

/**
 * The product's finetune path on full-size SD 1.5 with random weights kept external (as in a full-size pack): the
 * composed text encoder + UNet loss graph, relax lora rank 4 over fixed LiDB, the trainer's gradient graph saved beside
 * the weights, Adam steps. The first step includes graph build, save and session creation.
 */
async function benchFullStep(): Promise<Row[] | { skipped: string }> {
  const needed = FULL_STEP_WEIGHT_BYTES + FULL_STEP_ACTIVATION_BYTES_AT_64 * (LATENT / 64) ** 2;
  const available = availableMemoryBytes();
  if (available < needed) {
    const skipped = `full-size step skipped: needs ≈ ${(needed / 1e9).toFixed(1)} GB at ${LATENT}×${LATENT} latents, ${(available / 1e9).toFixed(1)} GB available (try --latent=32)`;
    console.log(skipped);
    return { skipped };
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  const unetPlan = planUnet(parseUnetConfig(manifestConfig('unet_manifest.json')));
  const textConfig = parseClipTextConfig(manifestConfig('text_encoder_manifest.json'));
  const vaePlan = planVae(parseVaeConfig(manifestConfig('vae_manifest.json')));
  const unetFile = join(CACHE_DIR, 'unet', 'diffusion_pytorch_model.safetensors');
  const textFile = join(CACHE_DIR, 'text_encoder', 'model.safetensors');
  mkdirSync(dirname(unetFile), { recursive: true });
  mkdirSync(dirname(textFile), { recursive: true });
  try {
    let t0 = performance.now();
    writeRandomCheckpoint(unetFile, unetInventory(unetPlan), 0);
    writeRandomCheckpoint(textFile, clipTextInventory(textConfig), 1);
    const writeMs = performance.now() - t0;
    const unetWeights = ModelWeights.open([unetFile], unetInventory(unetPlan), { label: 'unet' });
    const textWeights = ModelWeights.open([textFile], clipTextInventory(textConfig), { label: 'text_encoder' });
    const vaeDummy = { dir: CACHE_DIR, plan: vaePlan, weights: textWeights };
    t0 = performance.now();
    // Each network's weights referenced from its own folder, as a loaded pack does; the finetune re-roots them.
    const model = createPersonalizationModel({
      id: 'sd15-random', sha256: '0'.repeat(64),
      unet: { dir: dirname(unetFile), plan: unetPlan, weights: unetWeights },
      textEncoder: { dir: dirname(textFile), config: textConfig, weights: textWeights },
      vae: vaeDummy,
      tokenizer: ClipTokenizer.load(BUNDLED_CLIP_VOCAB),
      resolution: LATENT * 8,
      paramSources: { unet: externalParams(unetWeights, dirname(unetFile)), textEncoder: externalParams(textWeights, dirname(textFile)) },
    });
    const auxMs = performance.now() - t0;
    // A stand-in VAE posterior (the VAE is not part of a finetune step).
    const n = 4 * LATENT * LATENT;
    const subject = { mean: fillGaussianFloat32(namedRng(1, 'mean'), n), std: new Float32Array(n).fill(0.1), shape: [1, 4, LATENT, LATENT] as const, scalingFactor: 0.18215 };
    const fixedLidb = model.layers.map((_, i) => ({
      aTrain: fillGaussianFloat32(namedRng(1, `lidb/${i}`), model.lidb.r * model.bases[i]!.aEff, 1e-3),
      bTrain: fillGaussianFloat32(namedRng(2, `lidb/${i}`), model.bases[i]!.bEff * model.lidb.r, 1e-3),
    }));
    // --phase1-only: the phase-1 row alone (the finetune's session would stay loaded beside it: 2 × the weights).
    if (PHASE1_ONLY) return [await benchFullPhase1Step(model, subject)];
    const marks: number[] = [];
    const losses: number[] = [];
    t0 = performance.now();
    await optimizeOnSubject(model, subject, { kind: 'relax', mode: 'lora', rank: 4, fixedLidb }, {
      steps: FULL_STEPS,
      seed: 1,
      onProgress: (p) => {
        marks.push(performance.now());
        losses.push(p.loss);
      },
    });
    if (!losses.every(Number.isFinite)) throw new Error(`full-size loss is not finite: ${losses.join(', ')}`);
    const stepMs = marks.slice(1).map((mark, i) => mark - marks[i]!);
    const rows: Row[] = [{
      what: `SD 1.5 full, finetune step (text encoder + UNet fwd/bwd + Adam, relax lora r 4), ${LATENT}×${LATENT} latents`,
      writeRandomWeightsMs: writeMs, auxBasesMs: auxMs, graphSessionAndFirstStepMs: marks[0]! - t0,
      stepMs: median(stepMs), steps: stepMs.length, losses: losses.map((l) => Number(l.toFixed(4))).join(' '),
      peakRssGB: Number((process.resourceUsage().maxRSS / 1e6).toFixed(2)),
    }];
    if (PHASE1) rows.push(await benchFullPhase1Step(model, subject));
    return rows;
  } finally {
    rmSync(CACHE_DIR, { recursive: true, force: true });
  }
}

/**
 * One phase-1 step on the full-size layout: the default hypernetwork config (ViT-B/16 at 224 px, the paper's decoder
 * sizes) predicting LiDB for SD 1.5's 200 layers, through the composed text encoder + UNet loss, Adam on every
 * hypernetwork parameter; external weights as in a full-size pack. Peak RSS is the process's (the finetune row's
 * networks are loaded in the same process).
 */
async function benchFullPhase1Step(base: PersonalizationModel, subject: EncodedSubject): Promise<Row> {
  const config = parseHypernetworkConfig({});
  const heads = headLayouts(base.layers, base.lidb);
  const inventory = hypernetworkInventory(config, heads);
  const model: PersonalizationModel = { ...base, hypernetwork: { config, heads, params: initHypernetworkParams(config, inventory, 0, heads) } };
  const size = config.encoder.imageSize;
  const face = { pixels: fillGaussianFloat32(namedRng(3, 'face'), 3 * size * size), latent: subject };
  const marks: number[] = [];
  const losses: number[] = [];
  const t0 = performance.now();
  await trainHypernetwork(model, [face], [], {
    steps: FULL_STEPS,
    batchSize: 1,
    learningRate: 1e-4,
    onProgress: (p) => {
      marks.push(performance.now());
      losses.push(p.loss);
    },
  });
  if (!losses.every(Number.isFinite)) throw new Error(`full-size phase-1 loss is not finite: ${losses.join(', ')}`);
  const stepMs = marks.slice(1).map((mark, i) => mark - marks[i]!);
  const parameters = inventory.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  return {
    what: `SD 1.5 full, phase-1 step (ViT-B/16 hypernetwork, ${(parameters / 1e6).toFixed(1)}M parameters → LiDB → text encoder + UNet fwd/bwd + Adam), batch 1, ${LATENT}×${LATENT} latents`,
    graphSessionAndFirstStepMs: marks[0]! - t0,
    stepMs: median(stepMs), steps: stepMs.length, losses: losses.map((l) => Number(l.toFixed(4))).join(' '),
    peakRssGB: Number((process.resourceUsage().maxRSS / 1e6).toFixed(2)),
  };
}

if (FULL_ONLY) {
  const full = await benchFullStep();
  if (Array.isArray(full)) printTable('Full-size SD 1.5 (random weights, CPU)', full);
  await shutdownSharedSessionHost();
  console.log(`\nresults: ${writeResults('personalize-full', { full })}`);
} else {
  const files = benchFiles();
  printTable('Weight files for SD 1.5 (200 layers)', files.rows);
  console.log(`aux bases for SD 1.5's 200 layers: ${(files.auxMs / 1000).toFixed(2)} s`);
  const tiny = await benchTiny();
  printTable('Personalization on the tiny SD 1.5 configs (CPU)', tiny);
  const full = FULL ? await benchFullStep() : null;
  if (Array.isArray(full)) printTable('Full-size SD 1.5 (random weights, CPU)', full);
  await shutdownSharedSessionHost();
  console.log(`\nresults: ${writeResults('personalize', { files: files.rows, auxBasesSd15Ms: files.auxMs, tiny, full, baselineSteps: BASELINE_STEPS })}`);
}
