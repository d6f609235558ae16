// `npm run world:train-base -- [--run-dir D] [--vae DIR] [--samples N] [--steps N] [--batch B] [--init CHECKPOINT]
//   [--max-minutes M] [--checkpoint-every K] [--keep-every K] [--log-every K] [--measure 16,32,64]`: trains the world's
//   base model (gpu-runner/world/training/train-base.ts); `--measure` times a few steps at each batch size instead.
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../onnx/runtime/index.ts';
import {
  BASE_SAMPLES,
  BASE_TRAINING,
  baseTrainingSettingsSchema,
  DEFAULT_BASE_RUN_DIR,
  DEFAULT_WORLD_VAE_DIR,
  measureBaseBatches,
  runBaseTraining,
  type BaseTrainingRunOptions,
} from '../world/training/train-base.ts';

const { values } = parseArgs({
  options: {
    'run-dir': { type: 'string' },
    vae: { type: 'string' },
    samples: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    'max-minutes': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    'keep-every': { type: 'string' },
    'log-every': { type: 'string' },
    measure: { type: 'string' },
    init: { type: 'string' },
  },
});
const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
const settings = baseTrainingSettingsSchema.parse({
  ...BASE_TRAINING,
  steps: num(values.steps, BASE_TRAINING.steps),
  batch: num(values.batch, BASE_TRAINING.batch),
  ...(values.init === undefined ? {} : { init: values.init }),
});
const options: BaseTrainingRunOptions = {
  runDir: values['run-dir'] ?? DEFAULT_BASE_RUN_DIR,
  vaeDir: values.vae ?? DEFAULT_WORLD_VAE_DIR,
  samples: num(values.samples, BASE_SAMPLES),
  settings,
  maxMinutes: num(values['max-minutes'], Number.POSITIVE_INFINITY),
  checkpointEvery: num(values['checkpoint-every'], 200),
  keepEvery: num(values['keep-every'], 1000),
  logEvery: num(values['log-every'], 10),
};
if (values.measure !== undefined) await measureBaseBatches(options, values.measure.split(',').map(Number));
else await runBaseTraining(options);
await shutdownSharedSessionHost();
