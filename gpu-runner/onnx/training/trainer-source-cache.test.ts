// Trainers made from one forward graph reuse its gradient graph: same session, same numbers; a graph grown since, or
// another set of parameters, is differentiated again.
import { afterAll, describe, expect, it } from 'vitest';
import { Graph, linear, mseLoss, mul, tensor } from '../index.ts';
import { SessionHost } from '../runtime/session-host.ts';
import { float32Tensor } from '../runtime/tensor.ts';
import { adam } from '../optim/adam.ts';
import { constantSchedule } from '../optim/schedule.ts';
import { createTrainer } from './trainer.ts';

const host = new SessionHost({ cacheDir: null, log: () => undefined });
const runner = { host, executionProvider: 'cpu' as const };
afterAll(() => host.shutdown());

const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * scale);

function regression() {
  const g = new Graph('cached_regression');
  const x = g.input('x', 'float32', [4, 3]);
  const y = g.input('target', 'float32', [4, 2]);
  const w = g.input('w', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [2]);
  return { g, loss: mseLoss(linear(x, w, b), y) };
}

const feeds = { x: float32Tensor(ramp(12, 1), [4, 3]), target: float32Tensor(ramp(8, 0.5), [4, 2]) };
const trainerFor = (g: Graph, loss: ReturnType<typeof mseLoss> | string, params: Record<string, Float32Array>) =>
  createTrainer({ graph: g, loss, params, optimizer: adam(), schedule: constantSchedule(0.05), runner });

async function losses(trainer: Awaited<ReturnType<typeof trainerFor>>, steps: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push((await trainer.step(feeds)).loss);
  await trainer.close();
  return out;
}

describe('trainer gradient-graph reuse', () => {
  it('a second trainer on the same graph opens the same session and takes identical steps', async () => {
    const { g, loss } = regression();
    const params = () => ({ w: ramp(6, 0.3), b: ramp(2, 0.1) });
    const first = await trainerFor(g, loss, params());
    const firstKey = first.runner.key;
    const a = await losses(first, 5);
    const second = await trainerFor(g, loss, params());
    expect(second.runner.key).toBe(firstKey);
    expect(await losses(second, 5)).toEqual(a);
    expect(a.at(-1)!).toBeLessThan(a[0]!);
  });

  it('differentiates again for other parameters or a graph grown since', async () => {
    const { g, loss } = regression();
    const both = await trainerFor(g, loss, { w: ramp(6, 0.3), b: ramp(2, 0.1) });
    const onlyW = await trainerFor(g, loss, { w: ramp(6, 0.3) });
    expect(Object.keys((await onlyW.evaluate({ ...feeds, b: float32Tensor(ramp(2, 0.1), [2]) })).grads)).toEqual(['w']);
    expect(onlyW.runner.key).not.toBe(both.runner.key);
    await Promise.all([both.close(), onlyW.close()]);

    // Grown: a doubled loss as a new output; its gradient must be twice the first one's.
    const before = await trainerFor(g, loss, { w: ramp(6, 0.3), b: ramp(2, 0.1) });
    const gradsBefore = (await before.evaluate(feeds)).grads;
    await before.close();
    const doubled = g.output(mul(loss, g.constant(tensor('float32', [], [2]))), 'doubled');
    const after = await trainerFor(g, doubled, { w: ramp(6, 0.3), b: ramp(2, 0.1) });
    const gradsAfter = (await after.evaluate(feeds)).grads;
    await after.close();
    gradsAfter.w!.forEach((v, i) => expect(v).toBeCloseTo(2 * gradsBefore.w![i]!, 5));
  });
});
