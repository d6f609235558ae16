// Assembles a complete diffusers SD 1.5 folder from the sd15-tiny reference checkpoints (which ship only unet/,
// text_encoder/ and vae/): model_index.json, SD 1.5's scheduler config, and the CLIP tokenizer as vocab.json +
// merges.txt. Tests and tools use it to exercise folder loading with real, parity-checked weights.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SD15_SCHEDULER_CONFIG } from './schedulers/sd15-config.ts';
import { loadBpeVocab } from './tokenizer/bpe-vocab.ts';
import { BUNDLED_CLIP_VOCAB } from './tokenizer/clip-tokenizer.ts';

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
