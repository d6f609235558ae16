// Loading SD 1.5 from the diffusers folder layout: `model_index.json`, `unet/`, `text_encoder/`, `vae/`, `tokenizer/`,
// `scheduler/`, each model folder holding `config.json` and safetensors weights (fp32, or fp16 with `variant: 'fp16'`).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type ClipTextConfig, parseClipTextConfig } from '../clip-text/config.ts';
import { CLIP_OPTIONAL_BUFFERS, clipTextInventory } from '../clip-text/inventory.ts';
import { parseUnetConfig } from '../unet/config.ts';
import { unetInventory } from '../unet/inventory.ts';
import { planUnet, type UnetPlan } from '../unet/plan.ts';
import { parseVaeConfig } from '../vae/config.ts';
import { renameLegacyVaeKey, vaeInventory } from '../vae/inventory.ts';
import { planVae, type VaePlan } from '../vae/plan.ts';
import { CheckpointError, ModelWeights } from './weights.ts';

export interface LoadOptions {
  /** diffusers weight variant, e.g. 'fp16' → `diffusion_pytorch_model.fp16.safetensors`. */
  variant?: string;
}

export interface UnetComponent {
  dir: string;
  plan: UnetPlan;
  weights: ModelWeights;
}
export interface TextEncoderComponent {
  dir: string;
  config: ClipTextConfig;
  weights: ModelWeights;
}
export interface VaeComponent {
  dir: string;
  plan: VaePlan;
  weights: ModelWeights;
}

export interface StableDiffusionFolder {
  root: string;
  unet: UnetComponent;
  textEncoder: TextEncoderComponent;
  vae: VaeComponent;
  tokenizerDir: string;
  schedulerDir: string;
}

const indexSchema = z.object({ weight_map: z.record(z.string(), z.string()) });

function readJsonFile(path: string): unknown {
  if (!existsSync(path)) throw new CheckpointError(`missing ${path}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CheckpointError(`${path} is not valid JSON (${(error as Error).message})`);
  }
}

const SHARD_SUFFIX = /-\d+-of-\d+$/;

/** `<stem>.<variant>.safetensors` or its shard index: the variants a folder holds for one weight stem. */
function variantsIn(dir: string, stem: string): string[] {
  if (!existsSync(dir)) return [];
  const pattern = new RegExp(`^${stem.replaceAll('.', '\\.')}\\.([A-Za-z0-9_-]+)\\.safetensors(?:\\.index\\.json)?$`);
  const variants = readdirSync(dir).flatMap((name) => pattern.exec(name)?.[1] ?? []);
  // Shards of a variant (`<stem>.fp16-00001-of-00002.safetensors`) belong to its index, not to a variant of their own.
  return [...new Set(variants.filter((v) => !SHARD_SUFFIX.test(v)))].sort();
}

/**
 * The safetensors file(s) of a model folder: `<stem>[.<variant>].safetensors`, or the shards listed by
 * `<stem>[.<variant>].safetensors.index.json`. Without a variant, a folder holding only one variant's files (most
 * downloads carry `*.fp16.safetensors` alone) uses that variant; several variants and no plain file need a choice.
 */
export function weightFiles(dir: string, stem: string, variant?: string): string[] {
  const base = variant ? `${stem}.${variant}` : stem;
  const single = join(dir, `${base}.safetensors`);
  if (existsSync(single)) return [single];
  const index = join(dir, `${base}.safetensors.index.json`);
  if (existsSync(index)) {
    const parsed = indexSchema.safeParse(readJsonFile(index));
    if (!parsed.success) throw new CheckpointError(`${index}: not a safetensors index (needs weight_map)`);
    const shards = [...new Set(Object.values(parsed.data.weight_map))].map((shard) => join(dir, shard));
    const absent = shards.filter((shard) => !existsSync(shard));
    if (absent.length > 0) throw new CheckpointError(`${index} lists shard(s) that are missing: ${absent.join(', ')}`);
    return shards;
  }
  const variants = variantsIn(dir, stem);
  if (variant === undefined && variants.length === 1) return weightFiles(dir, stem, variants[0]);
  if (variants.length > 0) {
    const held = `${dir} holds variant(s) ${variants.map((v) => `"${v}"`).join(', ')} of ${stem}.safetensors`;
    throw new CheckpointError(variant === undefined ? `${held} and no plain file; choose one (RUNNER_MODEL_VARIANT)` : `${held}, not "${variant}"`);
  }
  const present = existsSync(dir) ? readdirSync(dir) : [];
  const pickled = present.filter((name) => name.endsWith('.bin') || name.endsWith('.ckpt'));
  const hint = pickled.length > 0 ? ` (found ${pickled.join(', ')}: pickle checkpoints are not loaded; convert them to safetensors)` : '';
  throw new CheckpointError(`no ${base}.safetensors in ${dir}${hint}`);
}

export function openUnetFolder(dir: string, options: LoadOptions = {}): UnetComponent {
  const plan = planUnet(parseUnetConfig(readJsonFile(join(dir, 'config.json'))));
  const weights = ModelWeights.open(weightFiles(dir, 'diffusion_pytorch_model', options.variant), unetInventory(plan), { label: 'unet' });
  return { dir, plan, weights };
}

export function openTextEncoderFolder(dir: string, options: LoadOptions = {}): TextEncoderComponent {
  const config = parseClipTextConfig(readJsonFile(join(dir, 'config.json')));
  const weights = ModelWeights.open(weightFiles(dir, 'model', options.variant), clipTextInventory(config), {
    label: 'text_encoder',
    ignore: CLIP_OPTIONAL_BUFFERS,
  });
  return { dir, config, weights };
}

export function openVaeFolder(dir: string, options: LoadOptions = {}): VaeComponent {
  const plan = planVae(parseVaeConfig(readJsonFile(join(dir, 'config.json'))));
  const weights = ModelWeights.open(weightFiles(dir, 'diffusion_pytorch_model', options.variant), vaeInventory(plan), {
    label: 'vae',
    rename: renameLegacyVaeKey,
  });
  return { dir, plan, weights };
}

const componentSchema = z.tuple([z.string().nullable(), z.string().nullable()]);
const modelIndexSchema = z.object({
  _class_name: z.string(),
  unet: componentSchema,
  text_encoder: componentSchema,
  vae: componentSchema,
  tokenizer: componentSchema,
  scheduler: componentSchema,
});

const EXPECTED_CLASSES: Readonly<Record<'unet' | 'text_encoder' | 'vae', string>> = {
  unet: 'UNet2DConditionModel',
  text_encoder: 'CLIPTextModel',
  vae: 'AutoencoderKL',
};

/** Opens a whole diffusers Stable Diffusion folder, checking every model's weights against its config. */
export function openDiffusersFolder(root: string, options: LoadOptions = {}): StableDiffusionFolder {
  const parsed = modelIndexSchema.safeParse(readJsonFile(join(root, 'model_index.json')));
  if (!parsed.success) throw new CheckpointError(`${join(root, 'model_index.json')}: ${z.prettifyError(parsed.error)}`);
  for (const [component, expected] of Object.entries(EXPECTED_CLASSES)) {
    const actual = parsed.data[component as keyof typeof EXPECTED_CLASSES][1];
    if (actual !== expected) throw new CheckpointError(`model_index.json: ${component} is ${actual}, expected ${expected}`);
  }
  return {
    root,
    unet: openUnetFolder(join(root, 'unet'), options),
    textEncoder: openTextEncoderFolder(join(root, 'text_encoder'), options),
    vae: openVaeFolder(join(root, 'vae'), options),
    tokenizerDir: join(root, 'tokenizer'),
    schedulerDir: join(root, 'scheduler'),
  };
}
