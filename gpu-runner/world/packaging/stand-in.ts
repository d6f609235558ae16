// A stand-in for the world pack while its base model trains: the world configs with seeded random UNet and text-encoder
// weights (stored fp16, as the trained export is), the committed world VAE, an untrained hypernetwork, and the same
// scaffold. Every path that will run on the trained pack (runner, gate, phase 1) is built and tested on it.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, toFloat32, float32ToFloat16Bits, writeSafetensors, type Tensor } from '../../io/safetensors.ts';
import { writeRandomCheckpoint } from '../../models/checkpoint/random-weights.ts';
import { clipTextInventory } from '../../models/clip-text/inventory.ts';
import { unetInventory } from '../../models/unet/inventory.ts';
import { writeInitialHypernetworkCheckpoint } from '../../personalize/hypernetwork/initial-checkpoint.ts';
import { PACK_HYPERNETWORK_FILE } from '../../pack/write-tiny-pack.ts';
import { BASE_FILES, BASE_FOLDERS, baseModel } from '../training/base-config.ts';
import { writePackScaffold } from './assemble.ts';
import { WORLD_PACK_DIR } from '../../pack/world-pack.ts';

/** Rewrites a safetensors file's F32 tensors as F16. */
function toHalf(path: string): void {
  const { tensors, metadata } = loadSafetensors(path);
  const half = new Map<string, Tensor>();
  for (const [name, tensor] of tensors) half.set(name, { dtype: 'F16', shape: tensor.shape, data: float32ToFloat16Bits(toFloat32(tensor)) });
  writeSafetensors(path, half, metadata);
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

export interface StandInOptions {
  readonly seed?: number;
  /** Where the VAE comes from (config.json + diffusion_pytorch_model.safetensors): the committed world VAE by default. */
  readonly vaeDir?: string;
  /** Also write an untrained hypernetwork checkpoint (default true: the pack's full shape, for the size budget). */
  readonly hypernetwork?: boolean;
}

export function writeStandInPack(dir: string, options: StandInOptions = {}): string {
  const seed = options.seed ?? 0;
  const vaeDir = options.vaeDir ?? join(WORLD_PACK_DIR, 'vae');
  for (const file of ['config.json', 'diffusion_pytorch_model.safetensors']) {
    if (!existsSync(join(vaeDir, file))) throw new Error(`the stand-in pack needs the world VAE: ${join(vaeDir, file)} is missing`);
  }
  const model = baseModel();
  writePackScaffold(dir);
  const unetDir = join(dir, BASE_FOLDERS.unet);
  const textDir = join(dir, BASE_FOLDERS.textEncoder);
  const vaeOut = join(dir, 'vae');
  for (const folder of [unetDir, textDir, vaeOut]) mkdirSync(folder, { recursive: true });
  writeJson(join(unetDir, BASE_FILES.config), model.unetJson);
  writeJson(join(textDir, BASE_FILES.config), model.textJson);
  const unetWeights = join(unetDir, BASE_FILES.unetWeights);
  const textWeights = join(textDir, BASE_FILES.textEncoderWeights);
  writeRandomCheckpoint(unetWeights, unetInventory(model.unet), seed + 1);
  writeRandomCheckpoint(textWeights, clipTextInventory(model.text), seed + 2);
  toHalf(unetWeights);
  toHalf(textWeights);
  copyFileSync(join(vaeDir, 'config.json'), join(vaeOut, 'config.json'));
  copyFileSync(join(vaeDir, 'diffusion_pytorch_model.safetensors'), join(vaeOut, 'diffusion_pytorch_model.safetensors'));
  if (options.hypernetwork ?? true) {
    writeInitialHypernetworkCheckpoint(join(dir, PACK_HYPERNETWORK_FILE), { unet: model.unet, textEncoder: model.text }, { seed: seed + 3 });
  }
  return dir;
}
