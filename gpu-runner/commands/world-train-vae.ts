// `npm run world:train-vae -- [--run-dir D] [--steps N] [--batch B] [--lr L] [--warmup W] [--init PACK_DIR_OR_SAFETENSORS]
//   [--eye-weight E] [--max-minutes M] [--checkpoint-every K] [--keep-every K] [--log-every K]`: trains the world's VAE
//   (gpu-runner/world/training/train-vae.ts). `--init` fine-tunes from existing weights (e.g. the committed fp16 pack,
//   upcast to float32) instead of a fresh init.
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../onnx/runtime/index.ts';
import { DEFAULT_VAE_RUN_DIR, runVaeTraining, VAE_TRAINING, vaeTrainingSettingsSchema } from '../world/training/train-vae.ts';

const { values } = parseArgs({
  options: {
    'run-dir': { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    'max-minutes': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    'keep-every': { type: 'string' },
    'log-every': { type: 'string' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    init: { type: 'string' },
    'eye-weight': { type: 'string' },
  },
});
const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
const settings = vaeTrainingSettingsSchema.parse({
  ...VAE_TRAINING,
  steps: num(values.steps, VAE_TRAINING.steps),
  batch: num(values.batch, VAE_TRAINING.batch),
  lr: num(values.lr, VAE_TRAINING.lr),
  warmup: num(values.warmup, VAE_TRAINING.warmup),
  ...(values.init === undefined ? {} : { init: values.init }),
  ...(values['eye-weight'] === undefined ? {} : { eyeWeight: Number(values['eye-weight']) }),
});
await runVaeTraining({
  runDir: values['run-dir'] ?? DEFAULT_VAE_RUN_DIR,
  settings,
  maxMinutes: num(values['max-minutes'], Number.POSITIVE_INFINITY),
  checkpointEvery: num(values['checkpoint-every'], 100),
  keepEvery: num(values['keep-every'], 500),
  logEvery: num(values['log-every'], 10),
});
await shutdownSharedSessionHost();
