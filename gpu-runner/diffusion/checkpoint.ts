// One way in for the Stable Diffusion checkpoints people have: a diffusers folder (model_index.json; fp32, variant or
// sharded weights) or a single-file SD 1.x checkpoint with the original key names, given as the file or as a folder
// holding it (beside a pack's hypernetwork/). A single file brings no tokenizer or scheduler: SD 1.x uses CLIP's
// vocabulary (bundled) and SD 1.5's published scheduler.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parsePythonJson } from '../io/python-json.ts';
import {
  type LoadOptions,
  openDiffusersFolder,
  type TextEncoderComponent,
  type UnetComponent,
  type VaeComponent,
} from '../models/checkpoint/diffusers-folder.ts';
import type { SingleFileConfigs } from '../models/checkpoint/sd15-configs.ts';
import { openSingleFileCheckpoint } from '../models/checkpoint/single-file.ts';
import { CheckpointError } from '../models/checkpoint/weights.ts';
import { SD15_SCHEDULER_CONFIG } from './schedulers/sd15-config.ts';
import { BUNDLED_CLIP_VOCAB } from './tokenizer/clip-tokenizer.ts';

export interface StableDiffusionCheckpoint {
  format: 'diffusers' | 'single-file';
  /** The folder, or the single file. */
  path: string;
  unet: UnetComponent;
  textEncoder: TextEncoderComponent;
  vae: VaeComponent;
  /** What ClipTokenizer.load reads: the folder's tokenizer/, or the bundled CLIP vocabulary. */
  tokenizer: string;
  /** scheduler/scheduler_config.json, or SD 1.5's published one. */
  schedulerConfig: Record<string, unknown>;
  /** Tensors of a single file that inference does not use, with why. */
  ignored: { key: string; reason: string }[];
}

/** The single-file checkpoint a folder without model_index.json holds (exactly one top-level `.safetensors`). */
function singleFileIn(dir: string): string {
  const files = readdirSync(dir).filter((name) => name.endsWith('.safetensors'));
  if (files.length === 1) return join(dir, files[0]!);
  if (files.length === 0) {
    const pickled = readdirSync(dir).filter((name) => name.endsWith('.ckpt') || name.endsWith('.bin'));
    const hint = pickled.length > 0 ? `; found ${pickled.join(', ')}: pickle checkpoints are not loaded, convert them to safetensors` : '';
    throw new CheckpointError(`${dir}: no model_index.json (a diffusers folder) and no .safetensors file (a single-file checkpoint)${hint}`);
  }
  throw new CheckpointError(`${dir}: no model_index.json and several .safetensors files (${files.join(', ')}); keep one single-file checkpoint there`);
}

function readSchedulerConfig(root: string): Record<string, unknown> {
  const path = join(root, 'scheduler', 'scheduler_config.json');
  if (!existsSync(path)) throw new CheckpointError(`missing ${path}`);
  const config = parsePythonJson(readFileSync(path, 'utf8'));
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new CheckpointError(`${path}: not a JSON object`);
  return config as Record<string, unknown>;
}

export interface OpenOptions extends LoadOptions {
  /** The architecture a single file is read against: SD 1.5's by default (smaller ones in tests). */
  singleFileConfigs?: SingleFileConfigs;
}

export function openStableDiffusion(path: string, options: OpenOptions = {}): StableDiffusionCheckpoint {
  if (!existsSync(path)) throw new CheckpointError(`${path} does not exist`);
  const isFolder = statSync(path).isDirectory();
  if (isFolder && existsSync(join(path, 'model_index.json'))) {
    const folder = openDiffusersFolder(path, options.variant ? { variant: options.variant } : {});
    return {
      format: 'diffusers',
      path,
      unet: folder.unet,
      textEncoder: folder.textEncoder,
      vae: folder.vae,
      tokenizer: folder.tokenizerDir,
      schedulerConfig: readSchedulerConfig(path),
      ignored: [],
    };
  }
  if (options.variant) throw new CheckpointError(`${path}: a weight variant ("${options.variant}") applies to diffusers folders only`);
  const file = isFolder ? singleFileIn(path) : path;
  const checkpoint = openSingleFileCheckpoint(file, options.singleFileConfigs);
  return {
    format: 'single-file',
    path: file,
    unet: checkpoint.unet,
    textEncoder: checkpoint.textEncoder,
    vae: checkpoint.vae,
    tokenizer: BUNDLED_CLIP_VOCAB,
    schedulerConfig: { ...SD15_SCHEDULER_CONFIG },
    ignored: checkpoint.ignored,
  };
}
