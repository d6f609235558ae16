import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors, float32Tensor } from '../../io/safetensors.ts';
import { adamW } from './adam.ts';
import { loadCheckpoint, restoreOptimizerState, saveCheckpoint } from './checkpoint.ts';
import { cosineSchedule } from './schedule.ts';
import { sgd } from './sgd.ts';
import type { Optimizer, OptimizerState, ParamSet } from './types.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdb-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const shapes = { w: [2, 3], b: [3] } as const;
const target = { w: Float32Array.from([1, -2, 3, 0.5, 0, -1]), b: Float32Array.from([0.25, -0.5, 2]) };
const schedule = cosineSchedule({ lr: 0.05, totalSteps: 40, warmupSteps: 5 });

function initialParams(): ParamSet {
  return { w: new Float32Array(6).fill(0.1), b: new Float32Array(3) };
}

/** Gradient of ½‖p − target‖² plus a coupling term, so different parameters interact through the loss. */
function gradients(params: ParamSet): ParamSet {
  const coupling = params.b![0]! * params.w![0]!;
  const w = params.w!.map((value, i) => value - target.w[i]! + (i === 0 ? coupling * params.b![0]! : 0));
  const b = params.b!.map((value, i) => value - target.b[i]! + (i === 0 ? coupling * params.w![0]! : 0));
  return { w, b };
}

function train(optimizer: Optimizer, params: ParamSet, state: OptimizerState, steps: number): void {
  for (let i = 0; i < steps; i++) optimizer.update(params, gradients(params), state, schedule(state.step));
}

describe('training checkpoints', () => {
  it('round-trips parameters, shapes, optimizer state, step and metadata', () => {
    const optimizer = adamW({ weightDecay: 0.02 });
    const params = initialParams();
    const state = optimizer.init(params);
    train(optimizer, params, state, 3);
    const path = join(dir, 'roundtrip.safetensors');
    saveCheckpoint(path, { params, shapes, optimizer: { name: optimizer.name, config: optimizer.config, state }, metadata: { run: 'r1' } });
    const loaded = loadCheckpoint(path);
    expect(loaded.shapes).toEqual({ w: [2, 3], b: [3] });
    expect(loaded.params.w).toEqual(params.w);
    expect(loaded.optimizer.state.step).toBe(3);
    expect(loaded.optimizer.state.slots.v!.b).toEqual(state.slots.v!.b);
    expect(loaded.optimizer.name).toBe('adamw');
    expect(loaded.metadata).toEqual({ run: 'r1' });
  });

  it('resuming from a checkpoint continues the exact trajectory of an uninterrupted run', () => {
    for (const makeOptimizer of [() => adamW({ weightDecay: 0.01 }), () => sgd({ momentum: 0.9, nesterov: true })]) {
      const optimizer = makeOptimizer();
      const straight = initialParams();
      const straightState = optimizer.init(straight);
      train(optimizer, straight, straightState, 30);

      const interrupted = initialParams();
      const interruptedState = optimizer.init(interrupted);
      train(optimizer, interrupted, interruptedState, 12);
      const path = join(dir, `resume-${optimizer.name}.safetensors`);
      saveCheckpoint(path, { params: interrupted, shapes, optimizer: { name: optimizer.name, config: optimizer.config, state: interruptedState } });

      const fresh = makeOptimizer();
      const loaded = loadCheckpoint(path);
      const resumedState = restoreOptimizerState(fresh, loaded);
      train(fresh, loaded.params, resumedState, 18);
      expect(resumedState.step).toBe(30);
      expect(loaded.params.w).toEqual(straight.w);
      expect(loaded.params.b).toEqual(straight.b);
    }
  });

  it('refuses to resume with another optimizer or other hyper-parameters', () => {
    const optimizer = adamW();
    const params = initialParams();
    const state = optimizer.init(params);
    const checkpoint = { params, optimizer: { name: optimizer.name, config: optimizer.config, state } };
    expect(() => restoreOptimizerState(sgd({ momentum: 0.9 }), checkpoint)).toThrow(/saved with optimizer "adamw", resuming with "sgd"/);
    expect(() => restoreOptimizerState(adamW({ weightDecay: 0.5 }), checkpoint)).toThrow(/optimizer config differs/);
    const missingSlot = { ...checkpoint, optimizer: { ...checkpoint.optimizer, state: { step: 1, slots: { m: state.slots.m! } } } };
    expect(() => restoreOptimizerState(optimizer, missingSlot)).toThrow(/slot "v" is missing "w"/);
  });

  it('rejects a safetensors file that is not a training checkpoint, and bad input on save', () => {
    const path = join(dir, 'plain.safetensors');
    writeSafetensors(path, { x: float32Tensor([1], new Float32Array(1)) });
    expect(() => loadCheckpoint(path)).toThrow(/not a training checkpoint/);
    const optimizer = sgd();
    const params = initialParams();
    const state = optimizer.init(params);
    const base = { params, optimizer: { name: 'sgd', config: optimizer.config, state } };
    expect(() => saveCheckpoint(join(dir, 'x.safetensors'), { ...base, shapes: { w: [2, 3] } })).toThrow(/no shape for parameter "b"/);
    expect(() => saveCheckpoint(join(dir, 'x.safetensors'), { ...base, shapes: { w: [5], b: [3] } })).toThrow(/"w" has 6 elements/);
    expect(() => saveCheckpoint(join(dir, 'x.safetensors'), { ...base, shapes, metadata: { step: '3' } })).toThrow(/"step" is reserved/);
    writeFileSync(join(dir, 'junk.safetensors'), 'not safetensors');
    expect(() => loadCheckpoint(join(dir, 'junk.safetensors'))).toThrow();
  });
});
