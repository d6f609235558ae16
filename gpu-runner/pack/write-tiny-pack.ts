// Writes the tiny model pack in the diffusers folder layout with seeded random weights: deterministic, in seconds,
// offline. Tests use it; the runner, `npm start` and the benchmarks fall back to it only while the trained world pack
// is incomplete (default-pack.ts).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { vocabFromOpenAiMerges } from '../diffusion/tokenizer/bpe-vocab.ts';
import { BUNDLED_CLIP_VOCAB } from '../diffusion/tokenizer/clip-tokenizer.ts';
import { writeRandomCheckpoint } from '../models/checkpoint/random-weights.ts';
import { sd15ModelIndex } from '../models/checkpoint/sd15-configs.ts';
import { writeInitialHypernetworkCheckpoint } from '../personalize/hypernetwork/initial-checkpoint.ts';
import { parseClipTextConfig } from '../models/clip-text/config.ts';
import { clipTextInventory } from '../models/clip-text/inventory.ts';
import { parseUnetConfig } from '../models/unet/config.ts';
import { unetInventory } from '../models/unet/inventory.ts';
import { planUnet } from '../models/unet/plan.ts';
import { parseVaeConfig } from '../models/vae/config.ts';
import { vaeInventory } from '../models/vae/inventory.ts';
import { planVae } from '../models/vae/plan.ts';
import {
  TINY_PACK_ID,
  TINY_SCHEDULER_CONFIG,
  TINY_TEXT_ENCODER_CONFIG,
  TINY_UNET_CONFIG,
  TINY_VAE_CONFIG,
} from './tiny-config.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where the runner looks for the pack's hypernetwork (model-pack.ts). */
export const PACK_HYPERNETWORK_FILE = join('hypernetwork', 'model.safetensors');
export const DEFAULT_TINY_PACK_DIR = join(REPO_ROOT, '.cache', 'packs', TINY_PACK_ID);
const MERGES_HEADER = '#version: 0.2';

function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The CLIP vocabulary as transformers' `vocab.json` + `merges.txt`, so diffusers and other tools load the pack. */
export function writeTokenizer(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const text = gunzipSync(readFileSync(BUNDLED_CLIP_VOCAB)).toString('utf8');
  const vocab = vocabFromOpenAiMerges(text, BUNDLED_CLIP_VOCAB);
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(Object.fromEntries(vocab.encoder)));
  const merges = [...vocab.mergeRanks.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
  writeFileSync(join(dir, 'merges.txt'), `${MERGES_HEADER}\n${merges.join('\n')}\n`);
  copyFileSync(join(dirname(BUNDLED_CLIP_VOCAB), 'LICENSE'), join(dir, 'LICENSE'));
  writeJson(join(dir, 'special_tokens_map.json'), {
    bos_token: '<|startoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
  });
  writeJson(join(dir, 'tokenizer_config.json'), { model_max_length: 77, tokenizer_class: 'CLIPTokenizer', do_lower_case: true });
}

export interface TinyPackSummary {
  readonly dir: string;
  readonly id: string;
  readonly bytes: Record<string, number>;
}

/** Writes a complete pack into a fresh staging folder beside `dir` and returns the staging path and sizes. */
function writeStagedPack(dir: string, seed: number): { staging: string; bytes: Record<string, number> } {
  const staging = `${dir}.partial-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  rmSync(staging, { recursive: true, force: true });
  const unetPlan = planUnet(parseUnetConfig(TINY_UNET_CONFIG));
  const vaePlan = planVae(parseVaeConfig(TINY_VAE_CONFIG));
  const textConfig = parseClipTextConfig(TINY_TEXT_ENCODER_CONFIG);

  writeJson(join(staging, 'model_index.json'), sd15ModelIndex({ _name_or_path: TINY_PACK_ID }));
  writeJson(join(staging, 'unet', 'config.json'), TINY_UNET_CONFIG);
  writeJson(join(staging, 'text_encoder', 'config.json'), TINY_TEXT_ENCODER_CONFIG);
  writeJson(join(staging, 'vae', 'config.json'), TINY_VAE_CONFIG);
  writeJson(join(staging, 'scheduler', 'scheduler_config.json'), TINY_SCHEDULER_CONFIG);
  writeTokenizer(join(staging, 'tokenizer'));

  const bytes = {
    unet: writeRandomCheckpoint(join(staging, 'unet', 'diffusion_pytorch_model.safetensors'), unetInventory(unetPlan), seed + 1),
    text_encoder: writeRandomCheckpoint(join(staging, 'text_encoder', 'model.safetensors'), clipTextInventory(textConfig), seed + 2),
    vae: writeRandomCheckpoint(join(staging, 'vae', 'diffusion_pytorch_model.safetensors'), vaeInventory(vaePlan), seed + 3),
    // Untrained (heads N(0, 1e-3), so ΔW ≈ 0) until phase 1 trains one: every path of the product runs end to end.
    hypernetwork: writeInitialHypernetworkCheckpoint(join(staging, PACK_HYPERNETWORK_FILE), { unet: unetPlan, textEncoder: textConfig }, { seed: seed + 4 }),
  };
  writeFileSync(
    join(staging, 'README.md'),
    `# ${TINY_PACK_ID}\n\nStable Diffusion 1.5's topology at tiny widths with seeded random weights (seed ${seed}), written by\n` +
      '`npm run pack:tiny`. Pictures from it are noise: it exists so the whole product runs, end to end, on a CPU.\n' +
      'The tokenizer is OpenAI CLIP\'s BPE vocabulary (MIT licence, see tokenizer/LICENSE).\n' +
      'hypernetwork/model.safetensors is an untrained hypernetwork (predicts ΔW ≈ 0).\n',
  );
  return { staging, bytes };
}

/**
 * Writes the pack into `dir`, replacing what is there, with weights drawn from `seed`. The same seed always gives
 * byte-identical files.
 */
export function writeTinyPack(dir: string = DEFAULT_TINY_PACK_DIR, seed = 0): TinyPackSummary {
  mkdirSync(dirname(dir), { recursive: true });
  const { staging, bytes } = writeStagedPack(dir, seed);
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  return { dir, id: TINY_PACK_ID, bytes };
}

/**
 * The pack folder, written first when it is missing (the runner, tests and `npm start` call it). Safe when several
 * processes call it at once: each writes its own staging folder and only the first rename wins; a pack already in
 * place is never removed under a reader.
 */
export function ensureTinyPack(dir: string = DEFAULT_TINY_PACK_DIR): string {
  if (existsSync(join(dir, 'model_index.json'))) return dir;
  mkdirSync(dirname(dir), { recursive: true });
  const { staging } = writeStagedPack(dir, 0);
  try {
    renameSync(staging, dir);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    // Another process renamed its complete pack into place first: use it.
    if (!existsSync(join(dir, 'model_index.json'))) throw error;
  }
  return dir;
}
