// `npm run world:vae-gate -- --checkpoint F | --pack D [--count N] [--grid out.png] [--fp16]`: the VAE's quality gate
// (gpu-runner/world/training/vae-gate.ts) on a training checkpoint or a pack's vae/ folder; prints the result as JSON.
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../onnx/runtime/index.ts';
import { readVaeCheckpoint } from '../world/training/train-vae.ts';
import { runVaeGate } from '../world/training/vae-gate.ts';
import { readVaePack } from '../world/training/vae-params.ts';

const { values } = parseArgs({ options: { checkpoint: { type: 'string' }, pack: { type: 'string' }, count: { type: 'string' }, grid: { type: 'string' }, fp16: { type: 'boolean' } } });
if (!values.checkpoint === !values.pack) throw new Error('give exactly one of --checkpoint <training checkpoint> or --pack <vae dir>');
const { vae, params } = values.checkpoint ? readVaeCheckpoint(values.checkpoint) : readVaePack(values.pack!);
const result = await runVaeGate(vae, params, { ...(values.count ? { count: Number(values.count) } : {}), ...(values.grid ? { grid: values.grid } : {}), fp16: values.fp16 ?? false });
console.log(JSON.stringify(result));
await shutdownSharedSessionHost();
