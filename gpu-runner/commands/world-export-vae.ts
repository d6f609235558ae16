// `npm run world:export-vae -- [--checkpoint F] [--out D] [--count N]`: writes a trained VAE into the world pack
// (gpu-runner/world/training/export-vae.ts), by default the latest checkpoint of the default run into its vae/ folder.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../onnx/runtime/index.ts';
import { exportVae, WORLD_VAE_PACK_DIR } from '../world/training/export-vae.ts';
import { DEFAULT_VAE_RUN_DIR } from '../world/training/train-vae.ts';
import { LATEST_CHECKPOINT } from '../world/training/run-settings.ts';

const { values } = parseArgs({ options: { checkpoint: { type: 'string' }, out: { type: 'string' }, count: { type: 'string' } } });
const result = await exportVae(values.checkpoint ?? join(DEFAULT_VAE_RUN_DIR, LATEST_CHECKPOINT), values.out ?? WORLD_VAE_PACK_DIR, values.count ? Number(values.count) : undefined);
console.log(JSON.stringify(result));
await shutdownSharedSessionHost();
