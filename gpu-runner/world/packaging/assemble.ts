// The pack's shared parts around the trained weights: model_index.json, the scheduler config the base model was
// trained with, and the bundled CLIP tokenizer in transformers' layout. The weights (vae/, unet/, text_encoder/,
// hypernetwork/) are written by their training stages; the model card by `model-card.ts`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sd15ModelIndex } from '../../models/checkpoint/sd15-configs.ts';
import { writeTokenizer } from '../../pack/write-tiny-pack.ts';
import { BASE_SCHEDULER_CONFIG } from '../training/base-config.ts';
import { WORLD_IMAGE_SIZE } from '../training/vae-config.ts';
import { WORLD_PACK_ID } from '../../pack/world-pack.ts';

/**
 * diffusers' StableDiffusionPipeline index. Keys starting with "_" are ignored by diffusers' loader; the runner reads
 * `_hdb_pack_id` (the id weight files record) and `_hdb_native_resolution` (the only size this pack draws well).
 */
export function worldModelIndex(): Record<string, unknown> {
  return sd15ModelIndex({ _name_or_path: WORLD_PACK_ID, _hdb_pack_id: WORLD_PACK_ID, _hdb_native_resolution: WORLD_IMAGE_SIZE });
}

function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Writes model_index.json, scheduler/ and tokenizer/ into `dir`; leaves every weight folder alone. */
export function writePackScaffold(dir: string): void {
  writeJson(join(dir, 'model_index.json'), worldModelIndex());
  writeJson(join(dir, 'scheduler', 'scheduler_config.json'), BASE_SCHEDULER_CONFIG);
  writeTokenizer(join(dir, 'tokenizer'));
}
