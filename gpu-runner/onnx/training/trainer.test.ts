import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../io/safetensors.ts';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { add, conv2d, grad, Graph, linear, mseLoss, mul, relu, safetensorsExternalTensors, serializeModel, tensor, type TensorValue } from '../index.ts';
import { SessionHost } from '../runtime/session-host.ts';
import { float32Tensor, type RuntimeFeeds } from '../runtime/tensor.ts';
import { adamW } from '../optim/adam.ts';
import { cosineSchedule, constantSchedule } from '../optim/schedule.ts';
import { sgd } from '../optim/sgd.ts';
import { createTrainer, type TrainerOptions } from './trainer.ts';
import type { ParamSet } from '../optim/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdb-trainer-'));
const host = new SessionHost({ cacheDir: null, log: () => undefined });
const runner = { host, executionProvider: 'cpu' as const };
afterAll(async () => {
  await host.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

function values(count: number, seed: number, scale = 1): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 31 - 1) * scale;
  });
}

const BATCH = 8;
const IN = 3;
const HIDDEN = 5;
const OUT = 2;

/** pred = linear(relu(linear(x, w1, b1)), w2): the trainable weights are graph inputs. */
function mlp() {
  const g = new Graph('mlp');
  const x = g.input('x', 'float32', [BATCH, IN]);
  const target = g.input('target', 'float32', [BATCH, OUT]);
  const w1 = g.input('w1', 'float32', [HIDDEN, IN]);
  const b1 = g.input('b1', 'float32', [HIDDEN]);
  const w2 = g.input('w2', 'float32', [OUT, HIDDEN]);
  const pred = linear(relu(linear(x, w1, b1)), w2);
  return { graph: g, loss: mseLoss(pred, target), pred };
}

const initialParams = (): ParamSet => ({ w1: values(HIDDEN * IN, 1, 0.5), b1: values(HIDDEN, 2, 0.1), w2: values(OUT * HIDDEN, 3, 0.5) });
const batch = (i: number): RuntimeFeeds => ({
  x: float32Tensor(values(BATCH * IN, 10 + i), [BATCH, IN]),
  target: float32Tensor(values(BATCH * OUT, 50 + i), [BATCH, OUT]),
});

function options(overrides: Partial<TrainerOptions> = {}): TrainerOptions {
  const { graph, loss } = mlp();
  return {
    graph,
    loss,
    params: initialParams(),
    optimizer: adamW({ weightDecay: 0.01 }),
    schedule: cosineSchedule({ lr: 0.02, totalSteps: 12, warmupSteps: 2 }),
    runner,
    ...overrides,
  };
}

describe('trainer', () => {
  it('returns the loss and the gradients of a linear model (hand-derived: dL/dW = 2/(N·K)·(XWᵀ − Y)ᵀX)', async () => {
    const g = new Graph('linear_regression');
    const x = g.input('x', 'float32', [BATCH, IN]);
    const y = g.input('target', 'float32', [BATCH, OUT]);
    const w = g.input('w', 'float32', [OUT, IN]);
    const params = { w: values(OUT * IN, 7) };
    const trainer = await createTrainer({ graph: g, loss: mseLoss(linear(x, w), y), params, optimizer: sgd(), schedule: constantSchedule(0.1), runner, returnGradients: true });
    const feeds = batch(0);
    const { loss, grads } = await trainer.evaluate(feeds);
    const X = feeds.x!.data as Float32Array;
    const Y = feeds.target!.data as Float32Array;
    const residual = new Float64Array(BATCH * OUT);
    let squared = 0;
    for (let n = 0; n < BATCH; n++) {
      for (let k = 0; k < OUT; k++) {
        let p = 0;
        for (let i = 0; i < IN; i++) p += X[n * IN + i]! * params.w[k * IN + i]!;
        residual[n * OUT + k] = p - Y[n * OUT + k]!;
        squared += residual[n * OUT + k]! ** 2;
      }
    }
    expect(loss).toBeCloseTo(squared / (BATCH * OUT), 5);
    for (let k = 0; k < OUT; k++) {
      for (let i = 0; i < IN; i++) {
        let expected = 0;
        for (let n = 0; n < BATCH; n++) expected += residual[n * OUT + k]! * X[n * IN + i]!;
        expect(grads.w![k * IN + i]).toBeCloseTo((2 / (BATCH * OUT)) * expected, 5);
      }
    }
    const result = await trainer.step(feeds);
    expect(result.step).toBe(0);
    const after = (await trainer.read()).params.w!;
    expect(after[0]).toBeCloseTo(params.w[0]! - 0.1 * result.grads.w![0]!, 6);
    expect(params.w).toEqual(values(OUT * IN, 7)); // the caller's initial values are copied, never modified
    await trainer.close();
  });

  it('lowers the loss on a fixed batch, reporting lr from the schedule and the clipped gradient norm', async () => {
    const trainer = await createTrainer(options({ maxGradNorm: 0.1, schedule: constantSchedule(0.03), returnGradients: true }));
    const feeds = batch(0);
    const first = await trainer.step(feeds);
    let last = first;
    for (let i = 0; i < 40; i++) last = await trainer.step(feeds);
    expect(last.loss).toBeLessThan(first.loss * 0.7);
    expect(last.lr).toBe(0.03);
    expect(last.step).toBe(40);
    expect(trainer.stepCount).toBe(41);
    expect((await trainer.read()).state.step).toBe(41);
    expect(first.gradNorm).toBeGreaterThan(0.1); // so clipping acted
    expect(Math.hypot(...Object.values(first.grads).flatMap((g) => [...g]))).toBeLessThanOrEqual(0.1 + 1e-5);
    await trainer.close();
  });

  it('takes, in the worker (WebAssembly SIMD update), bit for bit the steps of the JS optimizer on its gradients', async () => {
    const bits = (set: ParamSet) => Object.fromEntries(Object.entries(set).map(([k, a]) => [k, [...new Uint32Array(a.buffer, a.byteOffset, a.length)]]));
    for (const maxGradNorm of [undefined, 0.05]) {
      const optimizer = adamW({ weightDecay: 0.01, emaDecay: 0.9 });
      const trainer = await createTrainer(options({ optimizer, returnGradients: true, ...(maxGradNorm === undefined ? {} : { maxGradNorm }) }));
      const params = initialParams();
      const state = optimizer.init(params);
      for (let i = 0; i < 5; i++) {
        const result = await trainer.step(batch(i));
        // result.grads are the gradients the update used (clipped when maxGradNorm is set)
        const norm = Math.hypot(...Object.values(result.grads).flatMap((g) => [...g]));
        if (maxGradNorm === undefined) expect(result.gradNorm).toBeCloseTo(norm, 6);
        optimizer.update(params, result.grads, state, result.lr);
      }
      const resident = await trainer.read();
      expect(bits(resident.params)).toEqual(bits(params));
      for (const slot of ['m', 'v', 'ema']) expect(bits(resident.state.slots[slot]!)).toEqual(bits(state.slots[slot]!));
      await trainer.close();
    }
  });

  it('computes the loss alone (and extra outputs) as evaluate does, without stepping, on every backend', async () => {
    for (const optimizerBackend of ['typescript', 'fused'] as const) {
      const { graph, loss, pred } = mlp();
      const trainer = await createTrainer({ ...options({ optimizerBackend }), graph, loss, extraOutputs: [pred] });
      await trainer.step(batch(0));
      const full = await trainer.evaluate(batch(1));
      const alone = await trainer.loss(batch(1));
      expect(alone.loss).toBe(full.loss);
      expect(alone.outputs[pred.name]!.data).toEqual(full.outputs[pred.name]!.data);
      expect(trainer.stepCount).toBe(1);
      expect((await trainer.read()).state.step).toBe(1);
      await trainer.close();
    }
  });

  it('trains a convolution weight from its gradient in the computed layout (no Reshape copy), as the JS optimizer would', async () => {
    const g = new Graph('conv');
    const x = g.input('x', 'float32', [1, 3, 6, 6]);
    const w = g.input('w', 'float32', [4, 3, 3, 3]);
    const target = g.input('target', 'float32', [1, 4, 6, 6]);
    const loss = mseLoss(conv2d(x, w, undefined, { padding: 1 }), target);
    const flat = grad(g, { loss, wrt: [w], anyGradientLayout: true });
    expect(flat.value('grad.w').staticShape).not.toEqual([4, 3, 3, 3]); // the layout the weight gradient's MatMul made
    const shaped = grad(g, { loss, wrt: [w] });
    expect(shaped.value('grad.w').staticShape).toEqual([4, 3, 3, 3]);
    const reference = await InferenceSession.create(serializeModel(shaped));
    const convBatch = (i: number): RuntimeFeeds => ({ x: float32Tensor(values(108, 20 + i), [1, 3, 6, 6]), target: float32Tensor(values(144, 60 + i), [1, 4, 6, 6]) });
    const optimizer = adamW();
    const params: ParamSet = { w: values(108, 5, 0.3) };
    const state = optimizer.init(params);
    const trainer = await createTrainer({ graph: g, loss, params, optimizer, schedule: constantSchedule(0.01), runner, returnGradients: true });
    for (let i = 0; i < 3; i++) {
      const feeds = convBatch(i);
      const expected = await reference.run({ x: new Tensor('float32', feeds.x!.data, [1, 3, 6, 6]), target: new Tensor('float32', feeds.target!.data, [1, 4, 6, 6]), w: new Tensor('float32', params.w!, [4, 3, 3, 3]) });
      const result = await trainer.step(feeds);
      expect(result.grads.w).toEqual(expected['grad.w']!.data);
      optimizer.update(params, result.grads, state, result.lr);
    }
    expect((await trainer.read()).params.w).toEqual(params.w);
    await trainer.close();
    await reference.release();
  });

  it('keeps the gradients in the worker unless asked for them, taking the same steps either way', async () => {
    const [quiet, verbose] = await Promise.all([createTrainer(options()), createTrainer(options({ returnGradients: true }))]);
    for (let i = 0; i < 3; i++) {
      const [a, b] = await Promise.all([quiet.step(batch(i)), verbose.step(batch(i))]);
      expect(a.grads).toEqual({});
      expect(Object.keys(b.grads).sort()).toEqual(['b1', 'w1', 'w2']);
      expect(a.loss).toBe(b.loss);
      expect(a.gradNorm).toBe(b.gradNorm);
    }
    expect((await quiet.read()).params).toEqual((await verbose.read()).params);
    expect(Object.keys((await quiet.evaluate(batch(0))).grads).sort()).toEqual(['b1', 'w1', 'w2']);
    await Promise.all([quiet.close(), verbose.close()]);
  });

  it('resumes from a checkpoint onto the exact trajectory of an uninterrupted run', async () => {
    const straight = await createTrainer(options());
    const straightLosses: number[] = [];
    for (let i = 0; i < 10; i++) straightLosses.push((await straight.step(batch(i))).loss);

    const first = await createTrainer(options());
    for (let i = 0; i < 4; i++) await first.step(batch(i));
    const path = join(dir, 'mlp.safetensors');
    await first.saveCheckpoint(path, { run: 'resume-test' });
    await first.close();

    const resumed = await createTrainer(options({ params: { w1: new Float32Array(HIDDEN * IN), b1: new Float32Array(HIDDEN), w2: new Float32Array(OUT * HIDDEN) }, resumeFrom: path }));
    expect(resumed.stepCount).toBe(4);
    const resumedLosses: number[] = [];
    for (let i = 4; i < 10; i++) resumedLosses.push((await resumed.step(batch(i))).loss);
    expect(resumedLosses).toEqual(straightLosses.slice(4));
    const [resumedParams, straightParams] = [(await resumed.read()).params, (await straight.read()).params];
    for (const name of ['w1', 'b1', 'w2']) expect(resumedParams[name]).toEqual(straightParams[name]);
    await straight.close();
    await resumed.close();
  });

  for (const backend of ['graph', 'fused'] as const) {
    it(`the ${backend} optimizer backend follows the TypeScript one (with clipping)`, async () => {
      const clip = { maxGradNorm: 0.05 };
      const inTs = await createTrainer(options({ optimizerBackend: 'typescript', ...clip }));
      const other = await createTrainer(options({ optimizerBackend: backend, ...clip }));
      expect(other.optimizerBackend).toBe(backend);
      for (let i = 0; i < 5; i++) {
        const expected = await inTs.step(batch(i));
        const actual = await other.step(batch(i));
        expect(actual.loss).toBeCloseTo(expected.loss, 5);
        expect(actual.gradNorm).toBeCloseTo(expected.gradNorm, 5);
        expect(expected.gradNorm).toBeGreaterThan(clip.maxGradNorm); // clipping acted
      }
      const [otherParams, tsParams] = [(await other.read()).params, (await inTs.read()).params];
      for (const name of ['w1', 'b1', 'w2']) {
        otherParams[name]!.forEach((value, j) => expect(value).toBeCloseTo(tsParams[name]![j]!, 5));
      }
      expect(otherParams.w1).not.toEqual(initialParams().w1);
      const evaluated = await other.evaluate(batch(0));
      expect(Object.keys(evaluated.grads).sort()).toEqual(['b1', 'w1', 'w2']);
      const reference = (await inTs.evaluate(batch(0))).grads.w1!;
      evaluated.grads.w1!.forEach((value, j) => expect(value).toBeCloseTo(reference[j]!, 5));
      expect((await other.read()).state.step).toBe(5); // evaluate does not update
      await inTs.close();
      await other.close();
    });
  }

  it('builds a fused step for a graph with many parameters (node names stay unique after grad prunes)', async () => {
    const g = new Graph('deep');
    let h = g.input('x', 'float32', [BATCH, IN]);
    const params: ParamSet = {};
    for (let i = 0; i < 24; i++) {
      params[`scale${i}`] = Float32Array.of(1 + i / 100);
      params[`shift${i}`] = Float32Array.of(0);
      h = add(mul(h, g.input(`scale${i}`, 'float32', [1])), g.input(`shift${i}`, 'float32', [1]));
    }
    const target = g.input('target', 'float32', [BATCH, IN]);
    const trainer = await createTrainer({ graph: g, loss: mseLoss(h, target), params, optimizer: adamW(), schedule: constantSchedule(0.01), optimizerBackend: 'fused', runner });
    const feeds = { x: float32Tensor(values(BATCH * IN, 3), [BATCH, IN]), target: float32Tensor(values(BATCH * IN, 4), [BATCH, IN]) };
    const first = await trainer.step(feeds);
    const second = await trainer.step(feeds);
    expect(second.loss).toBeLessThan(first.loss);
    await trainer.close();
  });

  it('rejects parameters that are not graph inputs, parameters in the feeds, and mismatched checkpoints', async () => {
    const g = new Graph('frozen');
    const x = g.input('x', 'float32', [BATCH, IN]);
    const target = g.input('target', 'float32', [BATCH, OUT]);
    const w = g.param('w', tensor('float32', [OUT, IN], new Array(OUT * IN).fill(0)));
    const loss = mseLoss(linear(x, w), target);
    await expect(createTrainer({ graph: g, loss, params: { w: new Float32Array(OUT * IN) }, optimizer: sgd(), schedule: constantSchedule(1), runner })).rejects.toThrow(
      /"w" is not a graph input/,
    );
    await expect(createTrainer(options({ params: { ...initialParams(), w2: new Float32Array(3) } }))).rejects.toThrow(/"w2" has 3 values/);
    await expect(createTrainer(options({ optimizer: sgd(), optimizerBackend: 'graph' }))).rejects.toThrow(/no graph backend for optimizer "sgd"/);
    await expect(createTrainer(options({ optimizer: sgd(), optimizerBackend: 'fused' }))).rejects.toThrow(/no fused backend/);

    const trainer = await createTrainer(options());
    await expect(trainer.step({ ...batch(0), w1: float32Tensor(new Float32Array(HIDDEN * IN), [HIDDEN, IN]) })).rejects.toThrow(/must not include the parameter "w1"/);
    const path = join(dir, 'sgd.safetensors');
    const sgdTrainer = await createTrainer(options({ optimizer: sgd({ momentum: 0.9 }) }));
    await sgdTrainer.saveCheckpoint(path);
    await expect(createTrainer(options({ resumeFrom: path }))).rejects.toThrow(/saved with optimizer "sgd"/);
    await trainer.close();
    await sgdTrainer.close();
  });

  it('trains a graph whose frozen weights are external data: saved beside them, the same steps as inline', async () => {
    const modelDir = join(dir, 'external-model');
    mkdirSync(join(modelDir, 'frozen'), { recursive: true });
    const frozen = { w1: values(HIDDEN * IN, 1, 0.5), b1: values(HIDDEN, 2, 0.1) };
    writeSafetensors(join(modelDir, 'frozen', 'weights.safetensors'), {
      w1: { dtype: 'F32', shape: [HIDDEN, IN], data: frozen.w1 },
      b1: { dtype: 'F32', shape: [HIDDEN], data: frozen.b1 },
    });
    const external = safetensorsExternalTensors(modelDir, 'frozen/weights.safetensors');
    /** The MLP with w1 and b1 frozen initializers (inline or external) and w2 trainable. */
    const frozenMlp = (source: (name: 'w1' | 'b1') => TensorValue) => {
      const g = new Graph('frozen_mlp');
      const x = g.input('x', 'float32', [BATCH, IN]);
      const target = g.input('target', 'float32', [BATCH, OUT]);
      const w2 = g.input('w2', 'float32', [OUT, HIDDEN]);
      const hidden = relu(linear(x, g.param('w1', source('w1')), g.param('b1', source('b1'))));
      return { graph: g, loss: mseLoss(linear(hidden, w2), target) };
    };
    const train = async (built: ReturnType<typeof frozenMlp>, saveTo?: TrainerOptions['saveTo']) => {
      const trainer = await createTrainer({
        ...built,
        params: { w2: values(OUT * HIDDEN, 3, 0.5) },
        optimizer: adamW({ weightDecay: 0.01 }),
        schedule: constantSchedule(0.05),
        runner,
        ...(saveTo ? { saveTo } : {}),
      });
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await trainer.step(batch(i))).loss);
      // the loss alone comes from the forward graph's own session, saved beside the weights too
      const heldOut = (await trainer.loss(batch(9))).loss;
      expect(heldOut).toBe((await trainer.evaluate(batch(9))).loss);
      const { params } = await trainer.read();
      await trainer.close();
      return { losses, heldOut, w2: params.w2! };
    };
    const inline = await train(frozenMlp((name) => tensor('float32', name === 'w1' ? [HIDDEN, IN] : [HIDDEN], Array.from(frozen[name]))));
    const externalMlp = frozenMlp((name) => external.get(name)!);
    await expect(createTrainer({ ...externalMlp, params: { w2: new Float32Array(OUT * HIDDEN) }, optimizer: sgd(), schedule: constantSchedule(1), runner })).rejects.toThrow(
      /2 frozen weights .* external data .*saveTo/,
    );
    const saved = await train(externalMlp, { modelDir });
    expect(saved.losses).toEqual(inline.losses);
    expect(saved.heldOut).toBe(inline.heldOut);
    expect(saved.w2).toEqual(inline.w2);
    // the gradient graph and the forward graph
    const graphFiles = readdirSync(modelDir).filter((f) => f.endsWith('.onnx')).sort();
    expect(graphFiles).toHaveLength(2);
    for (const file of graphFiles) expect(file).toMatch(/^trainer-[0-9a-f]{16}\.onnx$/);
    // The same graphs again reuse their files; an explicit name is honoured (for the gradient graph).
    expect((await train(externalMlp, { modelDir })).w2).toEqual(inline.w2);
    expect((await train(externalMlp, { modelDir, file: 'step.onnx' })).w2).toEqual(inline.w2);
    expect(readdirSync(modelDir).filter((f) => f.endsWith('.onnx')).sort()).toEqual([...graphFiles, 'step.onnx'].sort());
  });
});
