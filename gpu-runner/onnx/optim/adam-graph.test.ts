import { afterAll, describe, expect, it } from 'vitest';
import { serializeModel } from '../index.ts';
import { SessionHost } from '../runtime/session-host.ts';
import { float32Data, float32Tensor, type RuntimeFeeds, type RuntimeOutputs } from '../runtime/tensor.ts';
import { adam, adamW } from './adam.ts';
import { adamGraphNames, buildAdamGraph, LR_INPUT, STEP_INPUT } from './adam-graph.ts';
import type { OptimizerState, ParamSet } from './types.ts';

const host = new SessionHost({ cacheDir: null, log: () => undefined });
afterAll(() => host.shutdown());

/** Deterministic pseudo-random values in [-1, 1) (a 32-bit LCG; quality is irrelevant here). */
function values(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

const shapes = { 'down.0.weight': [4, 3, 3, 3], 'down.0.bias': [4], 'proj.weight': [16, 8] } as const;

function paramSet(seed: number): ParamSet {
  return Object.fromEntries(Object.entries(shapes).map(([name, shape], i) => [name, values(shape.reduce((a, b) => a * b, 1), seed + i)]));
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    // float32 graph arithmetic vs float64-then-rounded TypeScript: agree to a few ulps of the step.
    expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(expected[i]!));
  }
}

/** One update through the graph, in place like `Optimizer.update` (what the trainer's 'graph' backend feeds). */
async function graphUpdate(run: (feeds: RuntimeFeeds) => Promise<RuntimeOutputs>, params: ParamSet, grads: ParamSet, state: OptimizerState, lr: number): Promise<void> {
  const feeds: RuntimeFeeds = { [LR_INPUT]: float32Tensor(Float32Array.of(lr), []), [STEP_INPUT]: float32Tensor(Float32Array.of(state.step), []) };
  for (const [name, shape] of Object.entries(shapes)) {
    const names = adamGraphNames(name);
    feeds[names.param] = float32Tensor(params[name]!, shape);
    feeds[names.grad] = float32Tensor(grads[name]!, shape);
    feeds[names.m] = float32Tensor(state.slots.m![name]!, shape);
    feeds[names.v] = float32Tensor(state.slots.v![name]!, shape);
  }
  const outputs = await run(feeds);
  for (const name of Object.keys(shapes)) {
    const names = adamGraphNames(name);
    params[name]!.set(float32Data(outputs, names.newParam));
    state.slots.m![name] = float32Data(outputs, names.newM);
    state.slots.v![name] = float32Data(outputs, names.newV);
  }
  state.step += 1;
}

describe('Adam as an ONNX graph', () => {
  for (const [label, make] of [
    ['adamw', () => adamW({ weightDecay: 0.1 })],
    ['adam with L2', () => adam({ weightDecay: 0.05, beta1: 0.8, beta2: 0.99 })],
  ] as const) {
    it(`${label}: matches the TypeScript optimizer over several steps`, async () => {
      const optimizer = make();
      const runner = await host.open(serializeModel(buildAdamGraph(shapes, optimizer.config)), { executionProvider: 'cpu' });
      const inTs = paramSet(1);
      const inGraph = paramSet(1);
      const tsState = optimizer.init(inTs);
      const graphState = optimizer.init(inGraph);
      const lrs = [1e-3, 5e-3, 2e-3, 1e-2];
      for (const [step, lr] of lrs.entries()) {
        const grads = paramSet(100 + step);
        optimizer.update(inTs, grads, tsState, lr);
        await graphUpdate((feeds) => runner.run(feeds), inGraph, grads, graphState, lr);
      }
      expect(graphState.step).toBe(4);
      for (const name of Object.keys(shapes)) {
        expectClose(inGraph[name]!, inTs[name]!);
        expectClose(graphState.slots.m![name]!, tsState.slots.m![name]!);
        expectClose(graphState.slots.v![name]!, tsState.slots.v![name]!);
      }
      // The update moved the parameters: the comparison is not between two unchanged copies.
      expect(inGraph['proj.weight']).not.toEqual(paramSet(1)['proj.weight']);
      await runner.close();
    });
  }
});
