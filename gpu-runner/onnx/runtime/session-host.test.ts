import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { add, Graph, mul, serializeModel } from '../index.ts';
import { liveRunner, SessionHost, type SessionRunner } from './session-host.ts';
import { float32Data, float32Tensor } from './tensor.ts';
import { affineModel, slowIdentityModel } from './test-models.ts';
import { cudaProviderInstalled } from './execution-provider.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdb-session-host-'));
const host = new SessionHost({ cacheDir: dir, log: () => undefined });
afterAll(async () => {
  await host.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

/** Big enough that a run lasts well beyond one event-loop turn (hundreds of ms on 2 cores). */
const SLOW_SIZE = 384;
const SLOW_DEPTH = 48;

describe('SessionHost (sessions in a worker thread)', () => {
  it('runs a model and returns typed arrays', async () => {
    const runner = await host.open(affineModel(1), { executionProvider: 'cpu' });
    expect(runner.inputNames).toEqual(['X']);
    expect(runner.outputNames).toEqual(['Y']);
    const outputs = await runner.run({ X: float32Tensor(Float32Array.from([1, 0, 0, 1]), [2, 2]) });
    expect(outputs.Y!.dims).toEqual([2, 2]);
    expect(float32Data(outputs, 'Y')).toBeInstanceOf(Float32Array);
    expect([...float32Data(outputs, 'Y')]).toEqual([3, 5, 7, 9]);
    await runner.close();
  });

  it('reopens bytes it has opened by their digest, and sends them again once the session was evicted', async () => {
    const evicting = new SessionHost({ cacheDir: null, maxIdleSessions: 0, log: () => undefined });
    try {
      const bytes = affineModel(2);
      const first = await evicting.open(bytes, { executionProvider: 'cpu' });
      const second = await evicting.open(bytes, { executionProvider: 'cpu' });
      expect(second.source).toBe('memory');
      expect(second.key).toBe(first.key);
      expect(second.digest).toBe(first.digest);
      const x = { X: float32Tensor(Float32Array.from([1, 0, 0, 1]), [2, 2]) };
      const expected = [...float32Data(await first.run(x), 'Y')];
      expect([...float32Data(await second.run(x), 'Y')]).toEqual(expected);
      await Promise.all([first.close(), second.close()]);
      // Idle and evicted (maxIdleSessions 0): the digest names nothing live, so the bytes are sent and built again.
      const third = await evicting.open(bytes, { executionProvider: 'cpu' });
      expect(third.source).toBe('built');
      expect(third.key).toBe(first.key);
      expect([...float32Data(await third.run(x), 'Y')]).toEqual(expected);
      await third.close();
    } finally {
      await evicting.shutdown();
    }
  });

  it('keeps the event loop free while a long run is in the worker', async () => {
    const runner = await host.open(slowIdentityModel(SLOW_SIZE, SLOW_DEPTH), { executionProvider: 'cpu' });
    const x = float32Tensor(Float32Array.from({ length: SLOW_SIZE * SLOW_SIZE }, (_, i) => i % 7), [SLOW_SIZE, SLOW_SIZE]);
    let runFinished = false;
    let timerFiredDuringRun = false;
    const run = runner.run({ X: x }).then((outputs) => {
      runFinished = true;
      return outputs;
    });
    // A timer on the main thread: it can only fire while the run is in flight if the run does not block this thread.
    setTimeout(() => {
      timerFiredDuringRun = !runFinished;
    }, 1);
    const outputs = await run;
    expect(timerFiredDuringRun).toBe(true);
    expect(float32Data(outputs, 'Y')).toEqual(x.data);
    await runner.close();
  });

  it('reuses the session for the same graph and builds a new one for a changed graph', async () => {
    const first = await host.open(affineModel(10), { executionProvider: 'cpu' });
    const again = await host.open(affineModel(10), { executionProvider: 'cpu' });
    const changed = await host.open(affineModel(11), { executionProvider: 'cpu' });
    expect(first.source).toBe('built');
    expect(again.source).toBe('memory');
    expect(again.key).toBe(first.key);
    expect(changed.source).toBe('built');
    expect(changed.key).not.toBe(first.key);
    // Closing one holder leaves the session usable by the other.
    await first.close();
    const y = await again.run({ X: float32Tensor(Float32Array.from([0, 0, 0, 0]), [2, 2]) });
    expect([...float32Data(y, 'Y')]).toEqual([10, 10, 10, 10]);
    await again.close();
    await changed.close();
  });

  it('computes only the requested outputs with fetches', async () => {
    const g = new Graph('two_outputs');
    const x = g.input('X', 'float32', [2]);
    g.output(add(x, 1), 'A');
    g.output(mul(x, 3), 'B');
    const runner = await host.open(serializeModel(g), { executionProvider: 'cpu' });
    const outputs = await runner.run({ X: float32Tensor(Float32Array.from([1, 2]), [2]) }, { fetches: ['B'] });
    expect(Object.keys(outputs)).toEqual(['B']);
    expect([...float32Data(outputs, 'B')]).toEqual([3, 6]);
    await runner.close();
  });

  it('copies feeds by default and moves them with transfer: true', async () => {
    const runner = await host.open(affineModel(1), { executionProvider: 'cpu' });
    const copied = Float32Array.from([1, 2, 3, 4]);
    await runner.run({ X: float32Tensor(copied, [2, 2]) });
    expect(copied.length).toBe(4);
    const moved = Float32Array.from([1, 2, 3, 4]);
    const outputs = await runner.run({ X: float32Tensor(moved, [2, 2]) }, { transfer: true });
    expect(moved.length).toBe(0); // detached: the buffer now belongs to the worker
    expect([...float32Data(outputs, 'Y')]).toEqual([15, 21, 31, 45]);
    await runner.close();
  });

  it('reports bad feeds, runs on a closed runner and requests to a shut-down host as errors', async () => {
    const runner = await host.open(affineModel(1), { executionProvider: 'cpu' });
    await expect(runner.run({ Z: float32Tensor(new Float32Array(4), [2, 2]) })).rejects.toThrow(/unknown: Z; missing: X/);
    await runner.close();
    await expect(runner.run({ X: float32Tensor(new Float32Array(4), [2, 2]) })).rejects.toThrow(/closed/);
    expect(() => float32Tensor(new Float32Array(3), [2, 2])).toThrow(/3 elements/);

    const shortLived = new SessionHost({ cacheDir: null, log: () => undefined });
    const other = await shortLived.open(affineModel(1), { executionProvider: 'cpu' });
    await shortLived.shutdown();
    expect(shortLived.dead).toBe(true);
    await expect(other.run({ X: float32Tensor(new Float32Array(4), [2, 2]) })).rejects.toThrow(/exited/);
  });
});

describe('SessionHost settings and session kinds', () => {
  it("opens with the host's provider and threads unless an open names its own, and reports each labelled kind", async () => {
    const events: Record<string, unknown>[] = [];
    const configured = new SessionHost({ cacheDir: null, defaults: { executionProvider: 'cpu', intraOpNumThreads: 1 }, log: (event) => events.push(event) });
    try {
      const unet = await configured.open(affineModel(11), { kind: 'unet' });
      const explicit = await configured.open(affineModel(12), { kind: 'trainer', executionProvider: 'auto' });
      await configured.open(affineModel(13));
      // the key carries the thread count: the host's 1 reached the worker
      const sameWithOneThread = await configured.open(affineModel(11), { intraOpNumThreads: 1 });
      expect(sameWithOneThread.key).toBe(unet.key);
      expect(configured.sessionKinds()).toEqual({
        // an open that names no precision is an fp32 graph (only the sampling graphs are built in fp16)
        unet: { requested: 'cpu', executionProvider: 'cpu', precision: 'fp32' },
        trainer: expect.objectContaining({ requested: 'auto', executionProvider: explicit.executionProvider }),
      });
      // said once per kind, not per open
      expect(events.filter((event) => event.event === 'onnx.session_kind').map((event) => event.kind)).toEqual(['unet', 'trainer']);
      await Promise.all([unet.close(), explicit.close(), sameWithOneThread.close()]);
    } finally {
      await configured.shutdown();
    }
  });

  it.skipIf(cudaProviderInstalled())("with 'cuda' and no CUDA provider, an open fails and its kind reports why instead of running on CPU", async () => {
    const strict = new SessionHost({ cacheDir: null, defaults: { executionProvider: 'cuda' }, log: () => undefined });
    try {
      await expect(strict.open(affineModel(14), { kind: 'vae-decoder' })).rejects.toThrow(/cuda/i);
      const status = strict.sessionKinds()['vae-decoder'];
      expect(status).toMatchObject({ requested: 'cuda', error: expect.stringMatching(/cuda/i) });
      expect(status?.executionProvider).toBeUndefined();
    } finally {
      await strict.shutdown();
    }
  });
});

describe('liveRunner (a cache of runners that outlives its host)', () => {
  it('reuses a live runner, and opens a fresh one once its host is gone', async () => {
    const cache = new WeakMap<object, Promise<SessionRunner>>();
    const key = {};
    let host = new SessionHost({ cacheDir: null, log: () => undefined });
    const open = () => host.open(affineModel(21), { executionProvider: 'cpu' });
    const first = await liveRunner(cache, key, open);
    expect(await liveRunner(cache, key, open)).toBe(first);
    await host.shutdown();
    expect(first.alive).toBe(false);
    host = new SessionHost({ cacheDir: null, log: () => undefined });
    try {
      const second = await liveRunner(cache, key, open);
      expect(second).not.toBe(first);
      expect(second.alive).toBe(true);
      expect([...float32Data(await second.run({ X: float32Tensor(Float32Array.from([1, 0, 0, 1]), [2, 2]) }), 'Y')]).toEqual([23, 25, 27, 29]);
    } finally {
      await host.shutdown();
    }
  });
});
