// A model pack as the runner serves it: a diffusers SD 1.5 folder (model_index.json, unet/, text_encoder/, vae/,
// tokenizer/, scheduler/), or a folder holding one single-file SD 1.x checkpoint (diffusion/checkpoint.ts), plus a
// hypernetwork checkpoint (`hypernetwork/model.safetensors`). Without a RUNNER_MODEL_DIR
// the trained world pack is used once complete, else the bundled tiny pack is written (seeded, deterministic) and used.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { LoadOptions } from '../models/checkpoint/diffusers-folder.ts';
import type { ModelWeights } from '../models/checkpoint/weights.ts';
import { externalParams, inlineParams, type ParamSource } from '../models/params.ts';
import { openStableDiffusion } from '../diffusion/checkpoint.ts';
import { INLINE_WEIGHT_LIMIT } from '../diffusion/pipeline.ts';
import { ClipTokenizer } from '../diffusion/tokenizer/clip-tokenizer.ts';
import type { SchedulerChoice } from '../diffusion/sampler.ts';
import { defaultModelDir } from './default-pack.ts';
import { packIndex } from './pack-index.ts';
import { trainingScheduleSchema } from '../diffusion/schedulers/noise-schedule.ts';
import { decodeHypernetworkCheckpoint } from '../personalize/hypernetwork/checkpoint.ts';
import { parseHypernetworkConfig, TINY_HYPERNETWORK_CONFIG } from '../personalize/hypernetwork/config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams } from '../personalize/hypernetwork/inventory.ts';
import { createPersonalizationModel, type PersonalizationModel } from '../personalize/model.ts';
import type { ExternalWeightDirs } from '../personalize/personalized-diffusion.ts';

const HYPERNETWORK_FOLDER = 'hypernetwork';
export const HYPERNETWORK_CHECKPOINT = join(HYPERNETWORK_FOLDER, 'model.safetensors');
/** The model card's figures and images inside a pack; outside the pack's digest. */
export const PACK_CARD_FOLDER = 'card';
/**
 * Seed of the stand-in hypernetwork of a pack that ships none (predicts ΔW ≈ 0: heads start near zero, docs/method.md).
 */
const UNTRAINED_HYPERNETWORK_SEED = 0;

export type LoadedPack = {
  dir: string;
  /**
   * Components whose graphs reference the checkpoint in place (docs/engine.md: ONNX protobufs stop at 2 GiB, SD 1.5's
   * UNet is 3.4 GB in fp32): their graphs are saved beside the weights before a session opens them, so that folder must
   * be writable.
   */
  externalWeights: ExternalWeightDirs;
  id: string;
  sha256: string;
  model: PersonalizationModel;
  tokenizer: ClipTokenizer;
  /** The pack's `scheduler/scheduler_config.json`, the base for every scheduler a job asks for. */
  schedulerConfig: Record<string, unknown>;
  hypernetwork: 'checkpoint' | 'untrained';
  /**
   * The one image side a pack draws well, when its model_index.json says so (`_hdb_native_resolution`: the world pack's
   * 32 px); requests for a multiple of it are sampled at this side and enlarged (native-resolution.ts).
   */
  nativeResolution?: number;
};

export type WeightPlacement = 'inline' | 'external' | 'auto';

function weightBytes(weights: ModelWeights): number {
  return weights.names.reduce((sum, name) => sum + weights.tensor(name).byteLength, 0);
}

export async function loadModelPack(
  modelDir: string | undefined,
  warn: (message: string) => void,
  placement: WeightPlacement = 'auto',
  load: LoadOptions = {},
): Promise<LoadedPack> {
  const dir = modelDir ?? defaultModelDir();
  const index = packIndex(dir);
  const folder = openStableDiffusion(dir, load);
  // Schedule buffers and position ids go unremarked; a second copy of the UNet that is not used deserves a line.
  const ema = folder.ignored.filter((tensor) => tensor.key.startsWith('model_ema.')).length;
  if (ema > 100) warn(`${folder.path} holds EMA weights beside the UNet (${ema} tensors): model.diffusion_model.* is used, as diffusers does`);
  const externalWeights: ExternalWeightDirs = {};
  const source = (key: keyof ExternalWeightDirs, component: { dir: string; weights: ModelWeights }): ParamSource => {
    const external = placement === 'auto' ? weightBytes(component.weights) > INLINE_WEIGHT_LIMIT : placement === 'external';
    if (!external) return inlineParams(component.weights);
    externalWeights[key] = component.dir;
    return externalParams(component.weights, component.dir);
  };
  const paramSources = {
    unet: source('unet', folder.unet),
    textEncoder: source('textEncoder', folder.textEncoder),
    vae: source('vae', folder.vae),
  };
  const tokenizer = ClipTokenizer.load(folder.tokenizer);
  const { schedulerConfig } = folder;
  const id = index.id ?? basename(dir);
  const sha256 = await packDigest(dir);
  // Personalization's noise schedule is the one the base model was trained with (the pack's scheduler config).
  const schedule = trainingScheduleSchema.parse({ trained_betas: null, ...pickSchedule(schedulerConfig) });
  const components = { id, sha256, unet: folder.unet, textEncoder: folder.textEncoder, vae: folder.vae, tokenizer, paramSources, schedule };
  const extras = index.nativeResolution ? { nativeResolution: index.nativeResolution } : {};
  const base = createPersonalizationModel(components);

  const checkpointPath = join(dir, HYPERNETWORK_CHECKPOINT);
  if (existsSync(checkpointPath)) {
    const checkpoint = decodeHypernetworkCheckpoint(
      new Uint8Array(readFileSync(checkpointPath)),
      base.layers.map((layer) => layer.name),
      (config, lidb) => hypernetworkInventory(config, headLayouts(base.layers, lidb)),
    );
    const model = createPersonalizationModel({
      ...components,
      lidb: checkpoint.lidb,
      selection: checkpoint.selection,
      hypernetwork: { config: checkpoint.config, params: checkpoint.params },
    });
    return { dir, externalWeights, id, sha256, model, tokenizer, schedulerConfig, hypernetwork: 'checkpoint', ...extras };
  }
  warn(`${checkpointPath} is missing: using an untrained hypernetwork (its predictions are near zero; the finetune does the work)`);
  const config = parseHypernetworkConfig(TINY_HYPERNETWORK_CONFIG);
  const params = initHypernetworkParams(config, hypernetworkInventory(config, headLayouts(base.layers, base.lidb)), UNTRAINED_HYPERNETWORK_SEED);
  const model = createPersonalizationModel({ ...components, hypernetwork: { config, params } });
  return { dir, externalWeights, id, sha256, model, tokenizer, schedulerConfig, hypernetwork: 'untrained', ...extras };
}

function pickSchedule(config: Record<string, unknown>): Record<string, unknown> {
  const keys = ['num_train_timesteps', 'beta_start', 'beta_end', 'beta_schedule', 'trained_betas'];
  return Object.fromEntries(keys.filter((key) => config[key] !== undefined).map((key) => [key, config[key]]));
}

const SCHEDULER_CLASSES = {
  ddim: { className: 'DDIMScheduler', overrides: {} },
  euler: { className: 'EulerDiscreteScheduler', overrides: {} },
  'euler-ancestral': { className: 'EulerAncestralDiscreteScheduler', overrides: {} },
  'dpmpp-2m': { className: 'DPMSolverMultistepScheduler', overrides: { algorithm_type: 'dpmsolver++', solver_order: 2 } },
  'dpmpp-2m-karras': {
    className: 'DPMSolverMultistepScheduler',
    overrides: { algorithm_type: 'dpmsolver++', solver_order: 2, use_karras_sigmas: true },
  },
  pndm: { className: 'PNDMScheduler', overrides: {} },
} as const;

/** The contract's scheduler names (CONTRACT.md) as diffusers classes on the pack's own scheduler config. */
export function schedulerChoice(pack: LoadedPack, name: keyof typeof SCHEDULER_CLASSES): SchedulerChoice {
  const { className, overrides } = SCHEDULER_CLASSES[name];
  return { className, config: { ...pack.schedulerConfig, _class_name: className, ...overrides } };
}

/**
 * SHA-256 over the pack's weight files and configs, in path order (each entry: relative path, size, bytes), so a
 * weight file records exactly which base it was made for. Streamed: full-size packs are gigabytes. Outside it: the
 * model card's material (`card/`: gate figures, sample grids), documentation; and the hypernetwork, which only predicts
 * starting weights: weight files stay valid, and phase-1 runs resumable, when it is (re)trained into the pack.
 */
export async function packDigest(dir: string): Promise<string> {
  const files: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory() && folder === dir && (entry.name === PACK_CARD_FOLDER || entry.name === HYPERNETWORK_FOLDER)) continue;
      if (entry.isDirectory() && !entry.name.startsWith('.')) walk(path);
      else if (entry.isFile() && /\.(safetensors|json|txt)$/.test(entry.name)) files.push(path);
    }
  };
  walk(dir);
  files.sort();
  const hash = createHash('sha256');
  for (const path of files) {
    hash.update(`${relative(dir, path)}\0${statSync(path).size}\0`);
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
