import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { knownCudaAvailability } from './execution-provider.ts';
import { INTRA_OP_SPINNING_ENV, SessionCache } from './session-cache.ts';
import { Graph, add, matmul, saveModel, tensor } from '../index.ts';
import { affineModel } from './test-models.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdb-session-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const quiet = () => undefined;
const X = () => ({ X: new Tensor('float32', Float32Array.from([1, 0, 0, 1]), [2, 2]) });

describe('SessionCache', () => {
  it('passes the intra-op spinning setting from the environment to onnxruntime, which accepts it', async () => {
    const previous = process.env[INTRA_OP_SPINNING_ENV];
    process.env[INTRA_OP_SPINNING_ENV] = '0';
    try {
      const cache = new SessionCache({ cacheDir: null, log: quiet });
      const { session } = await cache.acquire(affineModel(1), { executionProvider: 'cpu' });
      expect([...(await session.run(X())).Y!.data]).toEqual([3, 5, 7, 9]);
      await cache.dispose();
    } finally {
      if (previous === undefined) delete process.env[INTRA_OP_SPINNING_ENV];
      else process.env[INTRA_OP_SPINNING_ENV] = previous;
    }
  });

  it('returns the same session for the same graph, shapes and provider', async () => {
    const cache = new SessionCache({ cacheDir: null, log: quiet });
    const model = affineModel(1);
    const first = await cache.acquire(model, { executionProvider: 'cpu' });
    const second = await cache.acquire(Uint8Array.from(model), { executionProvider: 'cpu' });
    expect(first.source).toBe('built');
    expect(second.source).toBe('memory');
    expect(second.session).toBe(first.session);
    expect(second.key).toBe(first.key);
    expect(cache.size).toBe(1);
    await cache.dispose();
  });

  it('misses when the graph changes, and when the declared input shapes change', async () => {
    const cache = new SessionCache({ cacheDir: null, log: quiet });
    const base = await cache.acquire(affineModel(1), { executionProvider: 'cpu' });
    const changed = await cache.acquire(affineModel(2), { executionProvider: 'cpu' });
    const reshaped = await cache.acquire(affineModel(1), { executionProvider: 'cpu', inputShapes: { X: [4, 2] } });
    expect(changed.source).toBe('built');
    expect(changed.session).not.toBe(base.session);
    expect(reshaped.key).not.toBe(base.key);
    const y1 = (await base.session.run(X())).Y!.data;
    const y2 = (await changed.session.run(X())).Y!.data;
    expect([...y1]).toEqual([3, 5, 7, 9]);
    expect([...y2]).toEqual([4, 6, 8, 10]);
    await cache.dispose();
  });

  it('persists the optimized model on disk and loads it in a new cache (a new process)', async () => {
    const cacheDir = join(dir, 'disk');
    const model = affineModel(3);
    const writer = new SessionCache({ cacheDir, log: quiet });
    const built = await writer.acquire(model, { executionProvider: 'cpu' });
    expect(built.source).toBe('built');
    expect(readdirSync(cacheDir)).toEqual([`${built.key}.optimized.onnx`]);
    await writer.dispose();

    const reader = new SessionCache({ cacheDir, log: quiet });
    const loaded = await reader.acquire(model, { executionProvider: 'cpu' });
    expect(loaded.source).toBe('disk');
    expect(loaded.key).toBe(built.key);
    expect([...(await loaded.session.run(X())).Y!.data]).toEqual([5, 7, 9, 11]);
    const other = await reader.acquire(affineModel(4), { executionProvider: 'cpu' });
    expect(other.source).toBe('built');
    await reader.dispose();
  });

  it('opens a model by path with external data, shares it by content and location, and persists it only on request', async () => {
    const folder = join(dir, 'by-path');
    const g = new Graph('external');
    const x = g.input('X', 'float32', [2, 2]);
    g.output(add(matmul(x, g.param('W', tensor('float32', [2, 2], [1, 2, 3, 4]))), g.param('B', tensor('float32', [2, 2], new Array(4).fill(1)))), 'Y');
    const path = saveModel(g, folder, 'model.onnx', { file: 'weights.bin', thresholdBytes: 0 });
    const cacheDir = join(dir, 'path-cache');
    const cache = new SessionCache({ cacheDir, log: quiet });
    const first = await cache.acquire(path, { executionProvider: 'cpu' });
    const second = await cache.acquire(join(folder, '.', 'model.onnx'), { executionProvider: 'cpu' });
    expect(first.source).toBe('built');
    expect(second.session).toBe(first.session);
    expect([...(await first.session.run(X())).Y!.data]).toEqual([2, 3, 4, 5]);
    expect(readdirSync(cacheDir)).toEqual([]);
    const persisted = await cache.acquire(path, { executionProvider: 'cpu', intraOpNumThreads: 1, persistOptimized: true });
    expect(readdirSync(cacheDir)).toEqual([`${persisted.key}.optimized.onnx`]);
    await cache.dispose();
  });

  it('frees idle sessions beyond maxIdleSessions, least recently released first, and keeps held ones', async () => {
    const cache = new SessionCache({ cacheDir: null, maxIdleSessions: 1, log: quiet });
    const a = await cache.acquire(affineModel(1), { executionProvider: 'cpu' });
    const b = await cache.acquire(affineModel(2), { executionProvider: 'cpu' });
    const c = await cache.acquire(affineModel(3), { executionProvider: 'cpu' });
    await cache.release(a.key);
    await cache.release(b.key);
    expect(cache.size).toBe(2); // b idle (kept), c held; a freed
    expect(() => cache.held(a.key)).toThrow(/no held session/);
    expect(cache.held(c.key)).toBe(c.session);
    expect((await cache.acquire(affineModel(2), { executionProvider: 'cpu' })).source).toBe('memory');
    expect((await cache.acquire(affineModel(1), { executionProvider: 'cpu' })).source).toBe('built');
    await expect(cache.release('nope')).rejects.toThrow(/unknown session/);
    await cache.dispose();
  });

  it('auto uses CUDA when it loads and otherwise falls back to CPU, logging the fallback once', async () => {
    const events: Record<string, unknown>[] = [];
    const cache = new SessionCache({ cacheDir: null, log: (event) => events.push(event) });
    const first = await cache.acquire(affineModel(5));
    await cache.acquire(affineModel(6));
    const availability = knownCudaAvailability();
    expect(availability).toBeDefined();
    expect(first.executionProvider).toBe(availability!.available ? 'cuda' : 'cpu');
    const fallbacks = events.filter((event) => event.event === 'onnx.execution_provider');
    expect(fallbacks).toHaveLength(availability!.available ? 0 : 1);
    expect(events.filter((event) => event.event === 'onnx.session').map((event) => event.executionProvider)).toEqual([
      first.executionProvider,
      first.executionProvider,
    ]);
    if (!availability!.available) {
      await expect(cache.acquire(affineModel(7), { executionProvider: 'cuda' })).rejects.toThrow(/cuda/i);
    }
    await cache.dispose();
  });

  it('reports a model onnxruntime cannot load', async () => {
    const cache = new SessionCache({ cacheDir: null, log: quiet });
    await expect(cache.acquire(Uint8Array.from([1, 2, 3]), { executionProvider: 'cpu' })).rejects.toThrow();
    expect(cache.size).toBe(0);
  });
});
