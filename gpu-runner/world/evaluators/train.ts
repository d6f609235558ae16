// Trains the world evaluator on renders of training identities only (never generated images), with our engine, and
// reports per-head accuracy on renders of held-out identities. The command:
// gpu-runner/commands/world-train-evaluator.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { serializeSafetensors } from '../../io/safetensors.ts';
import { adam, cosineSchedule } from '../../onnx/optim/index.ts';
import { createTrainer } from '../../onnx/training/index.ts';
import { float32Tensor } from '../../onnx/runtime/index.ts';
import { DEFAULT_WORLD, sampleAt, type Sample, type Split, type WorldConfig } from '../dataset.ts';
import { toBatch } from './data.ts';
import { EVALUATOR_WEIGHTS, WorldEvaluator } from './evaluator.ts';
import { HEADS, TOTAL_CLASSES, oneHotTargets } from './heads.ts';
import { buildEvaluatorTrainingGraph, evaluatorShapes, initEvaluatorParams } from './network.ts';

/** Settings that trained to > 95% on every head in a few minutes on a 2-core CPU (see the model card). */
export interface EvaluatorTrainingSettings {
  batch: number;
  steps: number;
  lr: number;
  warmup: number;
  trainImages: number;
  testImages: number;
  seed: number;
}

export const EVALUATOR_TRAINING: EvaluatorTrainingSettings = { batch: 32, steps: 4000, lr: 3e-3, warmup: 100, trainImages: 12000, testImages: 600, seed: 11 };

function samples(world: WorldConfig, split: Split, count: number, offset = 0): Sample[] {
  return Array.from({ length: count }, (_, i) => sampleAt(world, split, offset + i));
}

export async function trainEvaluator(options: Partial<EvaluatorTrainingSettings> & { out?: string; log?: (line: string) => void } = {}) {
  const settings = { ...EVALUATOR_TRAINING, ...options };
  const log = options.log ?? ((line: string) => console.log(line));
  const world: WorldConfig = { ...DEFAULT_WORLD, size: 32 };
  const started = performance.now();
  const train = samples(world, 'train', settings.trainImages);
  const test = samples(world, 'test', settings.testImages);
  log(`rendered ${train.length} train + ${test.length} test images in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const { graph, loss } = buildEvaluatorTrainingGraph(settings.batch);
  const trainer = await createTrainer({
    graph,
    loss,
    params: initEvaluatorParams(settings.seed),
    optimizer: adam(),
    schedule: cosineSchedule({ lr: settings.lr, totalSteps: settings.steps, warmupSteps: Math.min(settings.warmup, settings.steps), minLr: settings.lr / 100 }),
    maxGradNorm: 1,
  });
  let cursor = 0;
  for (let step = 0; step < settings.steps; step++) {
    const batch: Sample[] = [];
    for (let i = 0; i < settings.batch; i++) batch.push(train[(cursor++) % train.length]!);
    const targets = new Float32Array(settings.batch * TOTAL_CLASSES);
    batch.forEach((s, i) => targets.set(oneHotTargets(s.identity, s.context), i * TOTAL_CLASSES));
    const result = await trainer.step({
      images: float32Tensor(toBatch(batch.map((s) => s.image)), [settings.batch, 3, 32, 32]),
      targets: float32Tensor(targets, [settings.batch, TOTAL_CLASSES]),
    });
    if (step % 100 === 0 || step === settings.steps - 1) log(`step ${step} loss ${result.loss.toFixed(4)} lr ${result.lr.toExponential(2)}`);
  }
  const { params } = await trainer.read();
  await trainer.close();

  const evaluator = await WorldEvaluator.open(params);
  const scores = await evaluator.score(test.map((s) => s.image));
  await evaluator.close();
  const accuracy: Record<string, number> = {};
  HEADS.forEach((head, k) => {
    let correct = 0;
    test.forEach((s, i) => {
      const p = scores[i]!.probs[k]!;
      if (p.indexOf(Math.max(...p)) === head.label(s.identity, s.context)) correct++;
    });
    accuracy[head.name] = correct / test.length;
  });
  const seconds = (performance.now() - started) / 1000;

  const out = options.out ?? EVALUATOR_WEIGHTS;
  mkdirSync(dirname(out), { recursive: true });
  const shapes = evaluatorShapes();
  const tensors = Object.fromEntries(Object.entries(params).map(([n, d]) => [n, { dtype: 'F32' as const, shape: shapes[n]!, data: d }]));
  writeFileSync(
    out,
    serializeSafetensors(tensors, {
      format: 'hdb-world-evaluator',
      version: '1',
      heads: JSON.stringify(HEADS.map((h) => ({ name: h.name, classes: h.classes, group: h.group }))),
      held_out_accuracy: JSON.stringify(accuracy),
      settings: JSON.stringify(settings),
    }),
  );
  return { accuracy, seconds, out };
}
