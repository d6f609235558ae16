// `npm run bench:personalize` (issue 5): on the tiny SD 1.5 configs on CPU, the time of predict, of one finetune step
// and of 40 steps (relax lora and lidb), of the dreambooth-lora baseline, and the weight-file sizes for SD 1.5's 200
// layers; the aux-basis build for SD 1.5 shapes; with --full, one finetune step (forward + backward of text encoder and
// UNet) of full-size SD 1.5 with random weights (--latent=N latents, default 32 = 256 px, to fit the dev machine);
// with --sweep, the finetune learning rate sweep.
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from '../gpu-runner/diffusion/tokenizer/clip-tokenizer.ts';
import { writeRandomCheckpoint } from '../gpu-runner/models/checkpoint/random-weights.ts';
import { ModelWeights } from '../gpu-runner/models/checkpoint/weights.ts';
import { parseClipTextConfig } from '../gpu-runner/models/clip-text/config.ts';
import { clipTextInventory } from '../gpu-runner/models/clip-text/inventory.ts';
import { externalParams } from '../gpu-runner/models/params.ts';
import { openGraphSession } from '../gpu-runner/models/session.ts';
import { parseUnetConfig } from '../gpu-runner/models/unet/config.ts';
import { unetInventory } from '../gpu-runner/models/unet/inventory.ts';
import { planUnet } from '../gpu-runner/models/unet/plan.ts';
import { parseVaeConfig } from '../gpu-runner/models/vae/config.ts';
import { planVae } from '../gpu-runner/models/vae/plan.ts';
import { grad, saveModel } from '../gpu-runner/onnx/index.ts';
import { shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import { referencePath } from '../gpu-runner/parity/reference-dir.ts';
import { fillGaussianFloat32, namedRng } from '../gpu-runner/random/index.ts';
import { fastFinetune, personalize, predict } from '../gpu-runner/personalize/api.ts';
import { buildDiffusionLossGraph, LOSS_INPUTS, LOSS_OUTPUT } from '../gpu-runner/personalize/finetune/diffusion-loss-graph.ts';
import { adaptedLayers } from '../gpu-runner/personalize/lidb/adapted-layers.ts';
import { generateAuxBasis } from '../gpu-runner/personalize/lidb/aux-basis.ts';
import { lidbAdapterFeeds } from '../gpu-runner/personalize/lidb/graph-adapter.ts';
import { lidbSettings } from '../gpu-runner/personalize/lidb/settings.ts';
import { createPersonalizationModel } from '../gpu-runner/personalize/model.ts';
import { exportLora } from '../gpu-runner/personalize/weights/lora-export.ts';
import { tinyPersonalizationModel } from '../gpu-runner/personalize/testing/tiny-model.ts';
import { encodeNativeWeights } from '../gpu-runner/personalize/weights/native-format.ts';
import type { PersonalizedWeights, RelaxTerm } from '../gpu-runner/personalize/weights/personalized-weights.ts';
import { DEFAULT_WORLD, sampleAt, toRgbBytes } from '../gpu-runner/world/index.ts';
import { printTable, type Row, writeResults } from './report.ts';

const FULL = process.argv.includes('--full');
/** Also sweep the finetune learning rate (DESIGN §3: the benchmark decides it) on held-out draws of the subject. */
const SWEEP = process.argv.includes('--sweep');
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

/** One gradient-graph run of full-size SD 1.5 (text encoder + UNet, relax lora rank 4 over fixed LiDB inputs). */
async function benchFullStep(): Promise<Row[]> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const unetPlan = planUnet(parseUnetConfig(manifestConfig('unet_manifest.json')));
  const textConfig = parseClipTextConfig(manifestConfig('text_encoder_manifest.json'));
  const vaePlan = planVae(parseVaeConfig(manifestConfig('vae_manifest.json')));
  const unetFile = join(CACHE_DIR, 'unet.safetensors');
  const textFile = join(CACHE_DIR, 'text_encoder.safetensors');
  try {
    let t0 = performance.now();
    writeRandomCheckpoint(unetFile, unetInventory(unetPlan), 0);
    writeRandomCheckpoint(textFile, clipTextInventory(textConfig), 1);
    const writeMs = performance.now() - t0;
    const unetWeights = ModelWeights.open([unetFile], unetInventory(unetPlan), { label: 'unet' });
    const textWeights = ModelWeights.open([textFile], clipTextInventory(textConfig), { label: 'text_encoder' });
    const vaeDummy = { dir: CACHE_DIR, plan: vaePlan, weights: textWeights };
    t0 = performance.now();
    const model = createPersonalizationModel({
      id: 'sd15-random', sha256: '0'.repeat(64),
      unet: { dir: CACHE_DIR, plan: unetPlan, weights: unetWeights },
      textEncoder: { dir: CACHE_DIR, config: textConfig, weights: textWeights },
      vae: vaeDummy,
      tokenizer: ClipTokenizer.load(BUNDLED_CLIP_VOCAB),
      resolution: LATENT * 8,
      paramSources: { unet: externalParams(unetWeights, CACHE_DIR), textEncoder: externalParams(textWeights, CACHE_DIR) },
    });
    const auxMs = performance.now() - t0;
    t0 = performance.now();
    const built = buildDiffusionLossGraph(model, { lidb: 'input', relax: { mode: 'lora', rank: 4 } });
    const relaxInputs = [...built.adapters.unet.relaxLora.values(), ...built.adapters.textEncoder.relaxLora.values()].flatMap((v) => [v.down.name, v.up.name]);
    const backward = grad(built.graph, { loss: LOSS_OUTPUT, wrt: relaxInputs });
    const path = saveModel(backward, CACHE_DIR, 'finetune-step.onnx');
    const buildMs = performance.now() - t0;
    t0 = performance.now();
    const session = await openGraphSession(path);
    const sessionMs = performance.now() - t0;
    const shape = built.latentShape;
    const n = shape.reduce((a, b) => a * b, 1);
    const feeds: Record<string, { dtype: 'float32' | 'int64'; dims: readonly number[]; data: Float32Array | BigInt64Array }> = {
      [LOSS_INPUTS.inputIds]: { dtype: 'int64', dims: [1, 77], data: BigInt64Array.from(model.tokenizer.tokenize('a [V] face'), (id) => BigInt(id)) },
      [LOSS_INPUTS.noisyLatents]: { dtype: 'float32', dims: shape, data: fillGaussianFloat32(namedRng(1, 'x'), n) },
      [LOSS_INPUTS.timestep]: { dtype: 'float32', dims: [1], data: Float32Array.of(500) },
      [LOSS_INPUTS.target]: { dtype: 'float32', dims: shape, data: fillGaussianFloat32(namedRng(1, 'e'), n) },
    };
    const adapterFeeds = lidbAdapterFeeds({ lidb: new Map([...built.adapters.unet.lidb, ...built.adapters.textEncoder.lidb]), relaxLidb: new Map(), relaxLora: new Map([...built.adapters.unet.relaxLora, ...built.adapters.textEncoder.relaxLora]) }, {});
    const times: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      const out = await session.run({ ...feeds, ...adapterFeeds } as never);
      times.push(performance.now() - t);
      if (!Number.isFinite(out[LOSS_OUTPUT]![0]!)) throw new Error('full-size loss is not finite');
    }
    await session.release();
    return [{
      what: `SD 1.5 full, finetune step (text encoder + UNet fwd/bwd), ${LATENT}×${LATENT} latents`,
      writeRandomWeightsMs: writeMs, auxBasesMs: auxMs, graphBuildAndSaveMs: buildMs, sessionCreateMs: sessionMs,
      firstStepMs: times[0]!, secondStepMs: times[1]!, nodes: backward.nodes.length, onnxBytes: statSync(path).size,
    }];
  } finally {
    rmSync(CACHE_DIR, { recursive: true, force: true });
  }
}

const files = benchFiles();
printTable('Weight files for SD 1.5 (200 layers)', files.rows);
console.log(`aux bases for SD 1.5's 200 layers: ${(files.auxMs / 1000).toFixed(2)} s`);
const tiny = await benchTiny();
printTable('Personalization on the tiny SD 1.5 configs (CPU)', tiny);
const full = FULL ? await benchFullStep() : null;
if (full) printTable('Full-size SD 1.5 (random weights, CPU)', full);
await shutdownSharedSessionHost();
console.log(`\nresults: ${writeResults('personalize', { files: files.rows, auxBasesSd15Ms: files.auxMs, tiny, full, baselineSteps: BASELINE_STEPS })}`);
