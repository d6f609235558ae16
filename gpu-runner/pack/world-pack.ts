// The world pack (docs/world.md): the tiny model pack trained on the synthetic face world, committed in the diffusers
// layout at gpu-runner/world/pack/. Its stages land one by one (vae/, then unet/ + text_encoder/, then hypernetwork/);
// the product uses it only once every part a pipeline needs is there, and the random tiny pack until then.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WORLD_PACK_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'world', 'pack');

/** Distinct from the random tiny pack's id (`hdb-tiny-sd15-random-v2`): weight files record which base they were made for. */
export const WORLD_PACK_ID = 'hdb-world-faces-32px-v1';

/**
 * The final pack committed in the diffusers layout, ≤ 25 MB in all (decimal megabytes, the stricter reading;
 * docs/world.md).
 */
export const WORLD_PACK_MAX_BYTES = 25_000_000;

/** The files a diffusers pipeline (and the runner) needs, relative to the pack root. The hypernetwork is optional. */
export const WORLD_PACK_REQUIRED_FILES: readonly string[] = [
  'model_index.json',
  join('scheduler', 'scheduler_config.json'),
  join('tokenizer', 'vocab.json'),
  join('tokenizer', 'merges.txt'),
  join('vae', 'config.json'),
  join('vae', 'diffusion_pytorch_model.safetensors'),
  join('unet', 'config.json'),
  join('unet', 'diffusion_pytorch_model.safetensors'),
  join('text_encoder', 'config.json'),
  join('text_encoder', 'model.safetensors'),
];

export function missingPackFiles(dir: string): string[] {
  return WORLD_PACK_REQUIRED_FILES.filter((file) => !existsSync(join(dir, file)));
}

export function isCompletePack(dir: string): boolean {
  return missingPackFiles(dir).length === 0;
}

/** Every file under `dir` with its size (hidden files and folders skipped: they are not part of a committed pack). */
export function packFiles(dir: string): { path: string; bytes: number }[] {
  const out: { path: string; bytes: number }[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) out.push({ path: relative(dir, path), bytes: statSync(path).size });
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

export function packBytes(dir: string): number {
  return packFiles(dir).reduce((sum, file) => sum + file.bytes, 0);
}

/** Throws when the pack is over its budget, naming the largest files. */
export function assertPackWithinBudget(dir: string, limit = WORLD_PACK_MAX_BYTES): number {
  const total = packBytes(dir);
  if (total > limit) {
    const largest = packFiles(dir).sort((a, b) => b.bytes - a.bytes).slice(0, 5).map((f) => `${f.path} ${(f.bytes / 1e6).toFixed(2)} MB`);
    throw new Error(`the pack ${dir} is ${(total / 1e6).toFixed(2)} MB, over its ${(limit / 1e6).toFixed(2)} MB budget (largest: ${largest.join(', ')})`);
  }
  return total;
}
