// `npm run world:train-evaluator [-- --steps N] [--out FILE]`: trains the world evaluator on renders of TRAIN identities
// (gpu-runner/world/evaluators/train.ts) and prints its held-out accuracy per head.
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../onnx/runtime/index.ts';
import { trainEvaluator } from '../world/evaluators/train.ts';

const { values } = parseArgs({ options: { steps: { type: 'string' }, out: { type: 'string' } } });
const result = await trainEvaluator({ ...(values.steps ? { steps: Number(values.steps) } : {}), ...(values.out ? { out: values.out } : {}) });
console.log(JSON.stringify({ heldOutAccuracy: result.accuracy, seconds: Math.round(result.seconds), weights: result.out }));
await shutdownSharedSessionHost();
