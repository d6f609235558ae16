// `npm run world:export-base -- [--checkpoint .cache/world-base/run/latest.safetensors] [--pack gpu-runner/world/pack]`:
// writes the base model's EMA weights into the world pack (gpu-runner/world/training/export-base.ts) and prints the
// run's loss curve summary.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WORLD_PACK_DIR } from '../pack/world-pack.ts';
import { exportBase } from '../world/training/export-base.ts';
import { DEFAULT_BASE_RUN_DIR } from '../world/training/train-base.ts';
import { LATEST_CHECKPOINT } from '../world/training/run-settings.ts';

const { values } = parseArgs({ options: { checkpoint: { type: 'string' }, pack: { type: 'string' } } });
const result = exportBase(values.checkpoint ?? join(DEFAULT_BASE_RUN_DIR, LATEST_CHECKPOINT), values.pack ?? WORLD_PACK_DIR);
console.log(JSON.stringify(result, null, 2));
