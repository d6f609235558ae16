// Trains the world's base model (the world pack's stage 2, docs/world.md): UNet + CLIP-architecture text encoder
// jointly, from scratch, with our engine, on cached VAE latents of TRAIN-identity renders. Epsilon-prediction MSE with
// min-SNR-5 weighting over SD 1.5's 1000 DDPM steps, 10% empty captions (for CFG), AdamW + warm-up + cosine +
// clipping, and an EMA of the weights kept as an optimizer slot (so it is in every checkpoint and resumes exactly).
// Batches, timesteps, noise and dropout are pure functions of the step: a resumed run continues exactly as the
// uninterrupted one would.
// The command: gpu-runner/commands/world-train-base.ts.
import { appendFileSync, copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { adamWRunSchema, LATEST_CHECKPOINT, PROGRESS_FILE } from './run-settings.ts';
import { adamW, cosineSchedule, loadCheckpoint, type ParamSet } from '../../onnx/optim/index.ts';
import { createTrainer, type Trainer } from '../../onnx/training/index.ts';
import { int64Tensor } from '../../onnx/runtime/index.ts';
import { BASE_UNET_CONFIG, BASE_TEXT_ENCODER_CONFIG, baseModel, baseParameterCounts, type BaseModel } from './base-config.ts';
import { baseTokenizer, loadOrBuildLatentSet, stepBatch, type LatentSet } from './base-data.ts';
import { BASE_TRAIN_INPUTS, BASE_TRAIN_OUTPUTS, buildBaseTrainingGraph } from './base-graph.ts';
import { initBaseParams } from './base-params.ts';
import { WORLD_PACK_DIR } from '../../pack/world-pack.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_BASE_CACHE_DIR = join(REPO_ROOT, '.cache', 'world-base');
export const DEFAULT_BASE_RUN_DIR = join(DEFAULT_BASE_CACHE_DIR, 'run');
export const DEFAULT_WORLD_VAE_DIR = join(WORLD_PACK_DIR, 'vae');

/** Settings that trained a base model stably (docs/world.md); steps and batch chosen by `--measure` on this machine. */
export const baseTrainingSettingsSchema = adamWRunSchema.extend({
  emaDecay: z.number().min(0).lt(1),
  captionDropout: z.number().min(0).max(1),
  minSnrGamma: z.number().positive(),
  seed: z.number().int().nonnegative(),
  /**
   * A base checkpoint whose trained weights (not its optimizer state) the run starts from, relative to the repository
   * (e.g. a pilot run on an earlier VAE's latents); absent: fresh init. AdamW moments, EMA and schedule start fresh.
   */
  init: z.string().optional(),
});
export type BaseTrainingSettings = z.infer<typeof baseTrainingSettingsSchema>;

export const BASE_TRAINING: BaseTrainingSettings = {
  steps: 6000,
  batch: 32,
  lr: 8e-4,
  minLr: 4e-5,
  warmup: 200,
  weightDecay: 0.01,
  maxGradNorm: 1,
  emaDecay: 0.999,
  captionDropout: 0.1,
  minSnrGamma: 5,
  seed: 11,
};

/** Renders encoded once for the run (TRAIN identities in varied contexts; a step draws its batch from them). */
export const BASE_SAMPLES = 24_000;

export interface BaseTrainingRun {
  readonly model: BaseModel;
  readonly settings: BaseTrainingSettings;
  readonly data: LatentSet;
  readonly trainer: Trainer;
}

/** The trained weights of the base checkpoint `init`, checked against the model being trained. */
export function initialBaseWeights(model: BaseModel, init: string): ParamSet {
  const source = readBaseCheckpoint(isAbsolute(init) ? init : join(REPO_ROOT, init));
  const expected = initBaseParams(model, 0);
  for (const [name, values] of Object.entries(expected)) {
    if (source.params[name]?.length !== values.length) throw new Error(`--init ${init}: "${name}" is missing or has another shape than the model being trained`);
  }
  return Object.fromEntries(Object.keys(expected).map((name) => [name, source.params[name]!]));
}

function optimizerFor(settings: BaseTrainingSettings) {
  return adamW({ weightDecay: settings.weightDecay, emaDecay: settings.emaDecay });
}

/** Opens a run: fresh weights, or the state of `resumeFrom` (same settings except steps, same latent cache). */
export async function openBaseTraining(settings: BaseTrainingSettings, data: LatentSet, model: BaseModel = baseModel(), resumeFrom?: string): Promise<BaseTrainingRun> {
  if (resumeFrom) {
    const { metadata } = loadCheckpoint(resumeFrom);
    const saved = metadata['settings'] === undefined ? undefined : baseTrainingSettingsSchema.parse(JSON.parse(metadata['settings']));
    if (JSON.stringify({ ...saved, steps: settings.steps }) !== JSON.stringify(settings)) {
      throw new Error(`${resumeFrom} was trained with settings ${metadata['settings']}, not ${JSON.stringify(settings)}`);
    }
    if (metadata['latents'] !== data.key) throw new Error(`${resumeFrom} was trained on latent cache ${metadata['latents']}, this run has ${data.key} (another VAE or renderer): use a fresh run directory`);
  }
  const { graph, loss, terms } = buildBaseTrainingGraph(model, settings.batch);
  const trainer = await createTrainer({
    graph,
    loss,
    params: settings.init === undefined ? initBaseParams(model, settings.seed) : initialBaseWeights(model, settings.init),
    optimizer: optimizerFor(settings),
    optimizerBackend: 'typescript',
    schedule: cosineSchedule({ lr: settings.lr, totalSteps: settings.steps, warmupSteps: Math.min(settings.warmup, settings.steps), minLr: settings.minLr }),
    maxGradNorm: settings.maxGradNorm,
    extraOutputs: terms,
    ...(resumeFrom ? { resumeFrom } : {}),
  });
  return { model, settings, data, trainer };
}

export interface BaseStepLog {
  step: number;
  loss: number;
  mse: number;
  lr: number;
  gradNorm: number;
}

/** Takes `count` steps (fewer if the run ends); the next batch is assembled while the worker runs the current step. */
export async function trainBaseSteps(run: BaseTrainingRun, count: number, onStep: (log: BaseStepLog) => void = () => {}, shouldStop: () => boolean = () => false): Promise<void> {
  const { trainer, settings, data } = run;
  const last = Math.min(settings.steps, trainer.stepCount + count);
  let feeds = trainer.stepCount < last ? stepBatch(data, settings, trainer.stepCount).feeds : undefined;
  while (feeds && !shouldStop()) {
    const pending = trainer.step(feeds);
    const next = trainer.stepCount + 1 < last ? stepBatch(data, settings, trainer.stepCount + 1).feeds : undefined;
    const r = await pending;
    onStep({ step: r.step, loss: r.loss, mse: (r.outputs[BASE_TRAIN_OUTPUTS.mse]!.data as Float32Array)[0]!, lr: r.lr, gradNorm: r.gradNorm });
    feeds = next;
  }
}

/** Saves atomically (write beside, then rename), so a crash never leaves a torn `latest` checkpoint. */
export async function saveBaseCheckpoint(run: BaseTrainingRun, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.partial`;
  await run.trainer.saveCheckpoint(partial, {
    settings: JSON.stringify(run.settings),
    unetConfig: JSON.stringify(run.model.unetJson),
    textEncoderConfig: JSON.stringify(run.model.textJson),
    latents: run.data.key,
    scalingFactor: String(run.data.scalingFactor),
  });
  renameSync(partial, path);
}

/** The weights of a base checkpoint: the trained ones and their EMA, with the model they belong to. */
export function readBaseCheckpoint(path: string): { model: BaseModel; params: ParamSet; ema: ParamSet; step: number; settings: BaseTrainingSettings } {
  const checkpoint = loadCheckpoint(path);
  const { unetConfig, textEncoderConfig, settings } = checkpoint.metadata;
  if (!unetConfig || !textEncoderConfig || !settings) throw new Error(`${path} is not a world base checkpoint (no unetConfig/textEncoderConfig/settings metadata)`);
  const ema = checkpoint.optimizer.state.slots['ema'];
  if (!ema) throw new Error(`${path} keeps no EMA of the weights (optimizer slot "ema")`);
  return {
    model: baseModel(JSON.parse(unetConfig), JSON.parse(textEncoderConfig)),
    params: checkpoint.params,
    ema,
    step: checkpoint.optimizer.state.step,
    settings: baseTrainingSettingsSchema.parse(JSON.parse(settings)),
  };
}

/**
 * Does the model use its captions? The weighted loss on one fixed held-aside draw (its own seed, no dropout) with the
 * true captions, with empty captions, and with the captions rolled by one row (another sample's caption): a model that
 * follows captions scores lowest with the true ones.
 */
export async function captionProbe(run: BaseTrainingRun): Promise<{ caption: number; empty: number; shuffled: number }> {
  const { feeds } = stepBatch(run.data, { ...run.settings, seed: run.settings.seed + 1_000_003, captionDropout: 0 }, 0);
  const ids = feeds[BASE_TRAIN_INPUTS.inputIds]!.data as BigInt64Array;
  const length = ids.length / run.settings.batch;
  const empty = BigInt64Array.from(baseTokenizer().tokenize('').map(BigInt));
  const withIds = (data: BigInt64Array) => ({ ...feeds, [BASE_TRAIN_INPUTS.inputIds]: int64Tensor(data, [run.settings.batch, length]) });
  const emptied = new BigInt64Array(ids.length);
  for (let row = 0; row < run.settings.batch; row++) emptied.set(empty, row * length);
  const rolled = new BigInt64Array(ids.length);
  rolled.set(ids.subarray(length));
  rolled.set(ids.subarray(0, length), ids.length - length);
  return {
    caption: (await run.trainer.loss(feeds)).loss,
    empty: (await run.trainer.loss(withIds(emptied))).loss,
    shuffled: (await run.trainer.loss(withIds(rolled))).loss,
  };
}

/** What `npm run world:train-base` asks of a run (gpu-runner/commands/world-train-base.ts). */
export interface BaseTrainingRunOptions {
  runDir: string;
  vaeDir: string;
  samples: number;
  settings: BaseTrainingSettings;
  maxMinutes: number;
  checkpointEvery: number;
  keepEvery: number;
  logEvery: number;
}

async function latentsFor(options: Pick<BaseTrainingRunOptions, 'vaeDir' | 'samples'>, log: (record: Record<string, unknown>) => void): Promise<LatentSet> {
  const started = performance.now();
  const set = await loadOrBuildLatentSet(DEFAULT_BASE_CACHE_DIR, options.vaeDir, options.samples, undefined, (done) => {
    if (done % 2048 < 64) log({ event: 'encoding', done, of: options.samples, minutes: (performance.now() - started) / 60_000 });
  });
  log({ event: 'latents', key: set.key, built: set.built, samples: set.count, scalingFactor: set.scalingFactor, minutes: (performance.now() - started) / 60_000 });
  return set;
}

/** s/step at each batch size (a few steps after two warm-up steps), to choose the batch. */
export async function measureBaseBatches(options: BaseTrainingRunOptions, batches: number[]): Promise<void> {
  const log = (record: Record<string, unknown>) => console.log(JSON.stringify(record));
  log({ event: 'parameters', ...baseParameterCounts() });
  const data = await latentsFor(options, log);
  for (const batch of batches) {
    const settings = { ...options.settings, batch };
    const opened = performance.now();
    const run = await openBaseTraining(settings, data);
    const openSeconds = (performance.now() - opened) / 1000;
    await trainBaseSteps(run, 2);
    const timed = 5;
    const started = performance.now();
    const losses: number[] = [];
    await trainBaseSteps(run, timed, (l) => losses.push(l.loss));
    const secondsPerStep = (performance.now() - started) / 1000 / timed;
    log({ event: 'measure', batch, openSeconds, secondsPerStep, samplesPerSecond: batch / secondsPerStep, losses });
    await run.trainer.close();
  }
}

/** Trains into `runDir`, resuming from its latest checkpoint, until the steps or the time are spent. */
export async function runBaseTraining(options: BaseTrainingRunOptions): Promise<void> {
  const { runDir, settings } = options;
  mkdirSync(runDir, { recursive: true });
  const progress = join(runDir, PROGRESS_FILE);
  const emit = (record: Record<string, unknown>) => {
    const line = JSON.stringify({ time: new Date().toISOString(), job: 'world-base', ...record });
    console.log(line);
    appendFileSync(progress, `${line}\n`);
  };
  let stopRequested = false;
  let training = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // Before the first step there is nothing to save: stop at once (encoding can take minutes).
      if (!training) process.exit(130);
      stopRequested = true;
    });
  }
  const started = performance.now();
  const deadline = started + options.maxMinutes * 60_000;
  const shouldStop = () => stopRequested || performance.now() > deadline;
  const data = await latentsFor(options, emit);
  const latest = join(runDir, LATEST_CHECKPOINT);
  const resume = existsSync(latest) ? latest : undefined;
  const run = await openBaseTraining(settings, data, baseModel(BASE_UNET_CONFIG, BASE_TEXT_ENCODER_CONFIG), resume);
  training = true;
  emit({ event: resume ? 'resumed' : 'started', step: run.trainer.stepCount, settings, samples: data.count, latents: data.key, vae: options.vaeDir, parameters: baseParameterCounts(run.model) });
  let window: BaseStepLog[] = [];
  let windowStart = performance.now();
  while (run.trainer.stepCount < settings.steps && !shouldStop()) {
    await trainBaseSteps(run, options.checkpointEvery - (run.trainer.stepCount % options.checkpointEvery), (log) => {
      window.push(log);
      if (window.length === options.logEvery || log.step === settings.steps - 1) {
        const mean = (key: keyof BaseStepLog) => window.reduce((s, l) => s + l[key], 0) / window.length;
        const seconds = (performance.now() - windowStart) / 1000;
        emit({ event: 'progress', step: log.step, loss: mean('loss'), mse: mean('mse'), lr: log.lr, gradNorm: mean('gradNorm'), secondsPerStep: seconds / window.length, elapsedMinutes: (performance.now() - started) / 60_000 });
        window = [];
        windowStart = performance.now();
      }
    }, shouldStop);
    await saveBaseCheckpoint(run, latest);
    const step = run.trainer.stepCount;
    emit({ event: 'captionProbe', step, ...(await captionProbe(run)) });
    if (step % options.keepEvery === 0 || step === settings.steps) copyFileSync(latest, join(runDir, `step-${String(step).padStart(6, '0')}.safetensors`));
    emit({ event: 'checkpoint', step, path: LATEST_CHECKPOINT });
  }
  emit({ event: run.trainer.stepCount >= settings.steps ? 'finished' : 'stopped', step: run.trainer.stepCount, minutes: (performance.now() - started) / 60_000 });
  await run.trainer.close();
}
