// Assembles a complete diffusers SD 1.5 folder from the sd15-tiny reference checkpoints (which ship only unet/,
// text_encoder/ and vae/): model_index.json, SD 1.5's scheduler config, and the CLIP tokenizer as vocab.json +
// merges.txt. Tests and tools use it to exercise folder loading with real, parity-checked weights.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBpeVocab } from './tokenizer/bpe-vocab.ts';
import { BUNDLED_CLIP_VOCAB } from './tokenizer/clip-tokenizer.ts';

/** SD 1.5's published scheduler/scheduler_config.json. */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
} as const;

/** Writes the folder at `root` from the model folders under `sd15TinyDir` (the reference's sd15-tiny/). */
export function writeDiffusersFolder(sd15TinyDir: string, root: string): string {
  for (const part of ['unet', 'text_encoder', 'vae']) cpSync(join(sd15TinyDir, part), join(root, part), { recursive: true });
  writeFileSync(
    join(root, 'model_index.json'),
    JSON.stringify({
      _class_name: 'StableDiffusionPipeline',
      scheduler: ['diffusers', 'PNDMScheduler'],
      text_encoder: ['transformers', 'CLIPTextModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
    }),
  );
  mkdirSync(join(root, 'scheduler'), { recursive: true });
  writeFileSync(join(root, 'scheduler', 'scheduler_config.json'), JSON.stringify(SD15_SCHEDULER_CONFIG));
  mkdirSync(join(root, 'tokenizer'), { recursive: true });
  const vocab = loadBpeVocab(BUNDLED_CLIP_VOCAB);
  writeFileSync(join(root, 'tokenizer', 'vocab.json'), JSON.stringify(Object.fromEntries(vocab.encoder)));
  const merges = [...vocab.mergeRanks.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
  writeFileSync(join(root, 'tokenizer', 'merges.txt'), ['#version: 0.2', ...merges].join('\n'));
  return root;
}
