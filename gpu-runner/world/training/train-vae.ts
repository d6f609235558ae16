// Trains the world's VAE with our engine on renders of TRAIN identities (the world pack's stage 1, docs/world.md).
// Resumable: checkpoints every N steps hold parameters, AdamW state, step and settings; batches and reparameterization
// noise are pure functions of the step, so a resumed run continues exactly as the uninterrupted one would. Progress:
// JSON lines.
// The command: gpu-runner/commands/world-train-vae.ts.
import { existsSync, mkdirSync, renameSync, appendFileSync, copyFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { adamWRunSchema, LATEST_CHECKPOINT, PROGRESS_FILE } from './run-settings.ts';
import { adamW, cosineSchedule, loadCheckpoint, type ParamSet } from '../../onnx/optim/index.ts';
import { createTrainer, type Trainer } from '../../onnx/training/index.ts';
import { float32Tensor } from '../../onnx/runtime/index.ts';
import { WORLD_VAE_CONFIG, worldVae, type WorldVae } from './vae-config.ts';
import { eyePixelWeights, imagesToNchw, stepNoise, trainSamples, worldAt } from './vae-data.ts';
import { buildVaeTrainingGraph, VAE_TRAIN_INPUTS } from './vae-graph.ts';
import { initVaeParams, readVaePack } from './vae-params.ts';
import { loadSafetensors } from '../../io/safetensors.ts';
import { vaeInventory } from '../../models/vae/inventory.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_VAE_RUN_DIR = join(REPO_ROOT, '.cache', 'world-vae', 'run');

/**
 * The settings that trained a VAE stably in the feasibility runs (docs/world.md: AdamW lr 1e-3, weight decay 0.01,
 * warm-up, clip 1.0, MSE + L1 + 1e-5 · mean KL); steps and batch sized by measuring this machine (≈ 1.7 s per step of
 * 16 at 32 px on 2 shared cores).
 */
export const vaeTrainingSettingsSchema = adamWRunSchema.extend({
  klWeight: z.number().nonnegative(),
  seed: z.number().int().nonnegative(),
  /** Weights the run started from (a pack directory or its safetensors), relative to the repository; absent: fresh init. */
  init: z.string().optional(),
  /** Extra reconstruction-loss weight on the iris pixels (weight 1 + eyeWeight there, 1 elsewhere); absent: none. */
  eyeWeight: z.number().nonnegative().optional(),
});
export type VaeTrainingSettings = z.infer<typeof vaeTrainingSettingsSchema>;

export const VAE_TRAINING: VaeTrainingSettings = {
  steps: 2400,
  batch: 16,
  lr: 1e-3,
  minLr: 5e-5,
  warmup: 200,
  weightDecay: 0.01,
  maxGradNorm: 1,
  klWeight: 1e-5,
  seed: 5,
};

/**
 * The weights to start from, as float32: a pack (its directory or its safetensors file, fp16 upcast) or a training
 * checkpoint of another run (a safetensors file with this script's metadata), checked against `vae`'s config.
 */
export function initialVaeWeights(vae: WorldVae, init: string): ParamSet {
  const path = isAbsolute(init) ? init : join(REPO_ROOT, init);
  const isCheckpoint = path.endsWith('.safetensors') && loadSafetensors(path).metadata['vaeConfig'] !== undefined;
  const source = isCheckpoint ? readVaeCheckpoint(path) : readVaePack(path.endsWith('.safetensors') ? dirname(path) : path);
  const shapes = (v: WorldVae) => JSON.stringify(vaeInventory(v.plan).map((spec) => [spec.name, spec.shape]));
  if (shapes(source.vae) !== shapes(vae) || source.vae.imageSize !== vae.imageSize) {
    throw new Error(`--init ${init}: its VAE (${source.vae.config.blockOutChannels}, ${source.vae.imageSize} px) is not the one being trained (${vae.config.blockOutChannels}, ${vae.imageSize} px)`);
  }
  return source.params;
}

export interface VaeTrainingRun {
  readonly vae: WorldVae;
  readonly settings: VaeTrainingSettings;
  readonly trainer: Trainer;
}

/** Opens a run: fresh weights, or the state of `resumeFrom` (whose settings must equal `settings`). */
export async function openVaeTraining(settings: VaeTrainingSettings, vae: WorldVae = worldVae(), resumeFrom?: string): Promise<VaeTrainingRun> {
  if (resumeFrom) {
    // Only the length of the run may change on resume (the cosine schedule then follows the new total from there).
    const saved = loadCheckpoint(resumeFrom).metadata['settings'];
    const savedSettings = saved === undefined ? undefined : vaeTrainingSettingsSchema.parse(JSON.parse(saved));
    if (JSON.stringify({ ...savedSettings, steps: settings.steps }) !== JSON.stringify(settings)) {
      throw new Error(`${resumeFrom} was trained with settings ${saved}, not ${JSON.stringify(settings)}`);
    }
  }
  const { graph, loss, terms } = buildVaeTrainingGraph(vae, settings.batch, settings.klWeight, (settings.eyeWeight ?? 0) > 0);
  const trainer = await createTrainer({
    graph,
    loss,
    params: settings.init === undefined ? initVaeParams(vae, settings.seed) : initialVaeWeights(vae, settings.init),
    optimizer: adamW({ weightDecay: settings.weightDecay }),
    schedule: cosineSchedule({ lr: settings.lr, totalSteps: settings.steps, warmupSteps: Math.min(settings.warmup, settings.steps), minLr: settings.minLr }),
    maxGradNorm: settings.maxGradNorm,
    extraOutputs: terms,
    ...(resumeFrom ? { resumeFrom } : {}),
  });
  return { vae, settings, trainer };
}

export interface VaeStepLog {
  step: number;
  loss: number;
  mse: number;
  l1: number;
  kl: number;
  lr: number;
  gradNorm: number;
}

export function batchFeeds(run: VaeTrainingRun, step: number) {
  const { vae, settings } = run;
  const world = worldAt(vae.imageSize);
  const samples = trainSamples(world, step, settings.batch);
  const images = imagesToNchw(samples.map((s) => s.image));
  const eyeWeight = settings.eyeWeight ?? 0;
  const latentShape = [settings.batch, vae.config.latentChannels, vae.latentSize, vae.latentSize];
  return {
    [VAE_TRAIN_INPUTS.images]: float32Tensor(images, [settings.batch, 3, vae.imageSize, vae.imageSize]),
    [VAE_TRAIN_INPUTS.noise]: float32Tensor(stepNoise(settings.seed, step, latentShape.reduce((a, b) => a * b, 1)), latentShape),
    ...(eyeWeight > 0 ? { [VAE_TRAIN_INPUTS.pixelWeights]: float32Tensor(eyePixelWeights(samples, eyeWeight), [settings.batch, 1, vae.imageSize, vae.imageSize]) } : {}),
  };
}

/** Takes `count` steps (fewer if the run ends); the next batch is rendered while the worker runs the current step. */
export async function trainVaeSteps(run: VaeTrainingRun, count: number, onStep: (log: VaeStepLog) => void = () => {}, shouldStop: () => boolean = () => false): Promise<void> {
  const { trainer, settings } = run;
  const last = Math.min(settings.steps, trainer.stepCount + count);
  let feeds = trainer.stepCount < last ? batchFeeds(run, trainer.stepCount) : undefined;
  while (feeds && !shouldStop()) {
    const pending = trainer.step(feeds);
    const next = trainer.stepCount + 1 < last ? batchFeeds(run, trainer.stepCount + 1) : undefined;
    const r = await pending;
    const scalar = (name: string) => (r.outputs[name]!.data as Float32Array)[0]!;
    onStep({ step: r.step, loss: r.loss, mse: scalar('mse'), l1: scalar('l1'), kl: scalar('kl'), lr: r.lr, gradNorm: r.gradNorm });
    feeds = next;
  }
}

/** Saves atomically (write beside, then rename), so a crash never leaves a torn `latest` checkpoint. */
export async function saveVaeCheckpoint(run: VaeTrainingRun, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.partial`;
  await run.trainer.saveCheckpoint(partial, { settings: JSON.stringify(run.settings), vaeConfig: JSON.stringify(run.vae.json), imageSize: String(run.vae.imageSize) });
  renameSync(partial, path);
}

/** The VAE weights of a training checkpoint, with the VAE they belong to. */
export function readVaeCheckpoint(path: string): { vae: WorldVae; params: ParamSet; step: number; settings: VaeTrainingSettings } {
  const checkpoint = loadCheckpoint(path);
  const config = checkpoint.metadata['vaeConfig'];
  const settings = checkpoint.metadata['settings'];
  if (!config || !settings) throw new Error(`${path} is not a world VAE checkpoint (no vaeConfig/settings metadata)`);
  const vae = worldVae(JSON.parse(config), Number(checkpoint.metadata['imageSize']));
  return { vae, params: checkpoint.params, step: checkpoint.optimizer.state.step, settings: vaeTrainingSettingsSchema.parse(JSON.parse(settings)) };
}

/** What `npm run world:train-vae` asks of a run (gpu-runner/commands/world-train-vae.ts). */
export interface VaeTrainingRunOptions {
  runDir: string;
  settings: VaeTrainingSettings;
  maxMinutes: number;
  checkpointEvery: number;
  keepEvery: number;
  logEvery: number;
}

/** Trains into `runDir`, resuming from its latest checkpoint, until the steps or the time are spent. */
export async function runVaeTraining(options: VaeTrainingRunOptions): Promise<void> {
  const { runDir, settings } = options;
  mkdirSync(runDir, { recursive: true });
  const latest = join(runDir, LATEST_CHECKPOINT);
  const resume = existsSync(latest) ? latest : undefined;
  const run = await openVaeTraining(settings, worldVae(WORLD_VAE_CONFIG), resume);
  const progress = join(runDir, PROGRESS_FILE);
  const emit = (record: Record<string, unknown>) => {
    const line = JSON.stringify({ time: new Date().toISOString(), job: 'world-vae', ...record });
    console.log(line);
    appendFileSync(progress, `${line}\n`);
  };
  emit({ event: resume ? 'resumed' : 'started', step: run.trainer.stepCount, settings, vae: WORLD_VAE_CONFIG.block_out_channels });
  let stopRequested = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (stopRequested = true));
  const started = performance.now();
  const deadline = started + options.maxMinutes * 60_000;
  let window: VaeStepLog[] = [];
  let windowStart = performance.now();
  const shouldStop = () => stopRequested || performance.now() > deadline;
  while (run.trainer.stepCount < settings.steps && !shouldStop()) {
    await trainVaeSteps(run, options.checkpointEvery - (run.trainer.stepCount % options.checkpointEvery), (log) => {
      window.push(log);
      if (window.length === options.logEvery || log.step === settings.steps - 1) {
        const mean = (key: keyof VaeStepLog) => window.reduce((s, l) => s + l[key], 0) / window.length;
        const seconds = (performance.now() - windowStart) / 1000;
        emit({ event: 'progress', step: log.step, loss: mean('loss'), mse: mean('mse'), l1: mean('l1'), kl: mean('kl'), lr: log.lr, gradNorm: mean('gradNorm'), secondsPerStep: seconds / window.length, elapsedMinutes: (performance.now() - started) / 60_000 });
        window = [];
        windowStart = performance.now();
      }
    }, shouldStop);
    await saveVaeCheckpoint(run, latest);
    const step = run.trainer.stepCount;
    if (step % options.keepEvery === 0 || step === settings.steps) copyFileSync(latest, join(runDir, `step-${String(step).padStart(6, '0')}.safetensors`));
    emit({ event: 'checkpoint', step, path: latest });
  }
  emit({ event: run.trainer.stepCount >= settings.steps ? 'finished' : 'stopped', step: run.trainer.stepCount, minutes: (performance.now() - started) / 60_000 });
  await run.trainer.close();
}
