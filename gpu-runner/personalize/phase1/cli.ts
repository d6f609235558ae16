// `npm run phase1 -- <pre-optimize | train> [options]`: phase 1 on the synthetic world's identities with a model pack
// (the tiny pack by default). Progress is one line on stderr; results are files, so runs resume where they stopped.
//   pre-optimize --out DIR [--identities N] [--steps N] [--shard I/N]        one LiDB file per identity
//   train --lidb DIR [--identities N] [--validation N] [--steps N] [--batch N] [--beta X] [--lr X]
//         [--checkpoint FILE] [--resume] [--out FILE]                       hypernetwork checkpoint (default: the pack's)
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { HYPERNETWORK_CHECKPOINT, loadModelPack } from '../../server/executors/model-pack.ts';
import { shutdownSharedSessionHost } from '../../onnx/runtime/index.ts';
import { encodeHypernetworkCheckpoint } from '../hypernetwork/checkpoint.ts';
import { hypernetworkInventory } from '../hypernetwork/inventory.ts';
import { preOptimizedPath, preOptimizeIdentities, readPreOptimized } from './pre-optimize.ts';
import { preparePhase1Subject, trainHypernetwork } from './train-hypernetwork.ts';
import { worldIdentityImages } from './world-identities.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    pack: { type: 'string' },
    out: { type: 'string' },
    lidb: { type: 'string' },
    identities: { type: 'string', default: '16' },
    validation: { type: 'string', default: '4' },
    steps: { type: 'string' },
    shard: { type: 'string', default: '0/1' },
    batch: { type: 'string', default: '2' },
    beta: { type: 'string', default: '0' },
    lr: { type: 'string' },
    checkpoint: { type: 'string' },
    resume: { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
  },
});

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

function bar(label: string, done: number, total: number, extra: string): void {
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${extra}   `);
  if (done === total) process.stderr.write('\n');
}

const command = positionals[0];
const pack = await loadModelPack(values.pack, (message) => process.stderr.write(`${message}\n`));
const model = pack.model;
const seed = int('seed', values.seed) ?? 0;
const count = int('identities', values.identities) ?? 16;

if (command === 'pre-optimize') {
  if (!values.out) throw new Error('pre-optimize needs --out DIR');
  const [index, shards] = values.shard.split('/').map(Number) as [number, number];
  const result = await preOptimizeIdentities(model, worldIdentityImages('train', count), {
    outDir: values.out,
    ...(values.steps ? { steps: int('steps', values.steps)! } : {}),
    seed,
    shard: { index, count: shards },
    onProgress: (p) => bar(`pre-optimize shard ${index}/${shards}`, p.done, p.total, p.finalLoss !== undefined ? `loss ${p.finalLoss.toFixed(4)}` : `(${p.skipped} done before)`),
  });
  console.log(JSON.stringify({ written: result.written.length, skipped: result.skipped.length, outDir: values.out }));
} else if (command === 'train') {
  const beta = Number(values.beta);
  const identities = worldIdentityImages('train', count);
  const train = await Promise.all(
    identities.map(async (identity) => {
      const target = beta > 0 && values.lidb ? readPreOptimized(model, values.lidb, identity.id).lidb : undefined;
      if (beta > 0 && !(values.lidb && existsSync(preOptimizedPath(values.lidb, identity.id)))) throw new Error(`--beta > 0 needs --lidb with ${identity.id}'s pre-optimized file`);
      return preparePhase1Subject(model, identity.image, target ? { target } : {});
    }),
  );
  const validation = await Promise.all(worldIdentityImages('validation', int('validation', values.validation) ?? 4).map((v) => preparePhase1Subject(model, v.image)));
  const steps = int('steps', values.steps) ?? 100;
  const result = await trainHypernetwork(model, train, validation, {
    steps,
    batchSize: int('batch', values.batch) ?? 2,
    beta,
    seed,
    ...(values.lr ? { learningRate: Number(values.lr) } : {}),
    ...(values.checkpoint ? { checkpointPath: values.checkpoint, checkpointEvery: 10, resume: values.resume && existsSync(values.checkpoint) } : {}),
    validationEvery: 10,
    onProgress: (p) => bar('train hypernetwork', p.step, p.steps, `loss ${p.loss.toFixed(4)}${p.validationLoss !== undefined ? ` val ${p.validationLoss.toFixed(4)}` : ''}`),
  });
  const hyper = model.hypernetwork!;
  const out = values.out ?? join(pack.dir, HYPERNETWORK_CHECKPOINT);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    encodeHypernetworkCheckpoint(
      { config: hyper.config, lidb: model.lidb, selection: model.selection, layerNames: model.layers.map((l) => l.name), params: result.params, info: { steps: String(steps), beta: String(beta), identities: String(count) } },
      hypernetworkInventory(hyper.config, hyper.heads),
    ),
  );
  console.log(JSON.stringify({ checkpoint: out, steps, finalLoss: result.losses.at(-1) ?? null, validation: result.validation }));
} else {
  throw new Error('usage: npm run phase1 -- <pre-optimize | train> [options] (see gpu-runner/personalize/phase1/cli.ts)');
}
await shutdownSharedSessionHost();
