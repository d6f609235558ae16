// The worker thread that owns the onnxruntime sessions. `session.run` is synchronous native work that would block
// the event loop of whichever thread calls it (DESIGN §4), so it happens here, not on the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { transferList, type HostRequest, type WorkerInit, type WorkerReply } from './protocol.ts';
import { SessionCache } from './sessionCache.ts';
import type { RuntimeOutputs, RuntimeTensorType } from './tensor.ts';

if (!parentPort) throw new Error('sessionWorker.ts must run in a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

const cache = new SessionCache({
  cacheDir: init.cacheDir,
  ...(init.maxIdleSessions === undefined ? {} : { maxIdleSessions: init.maxIdleSessions }),
  log: (event) => reply({ kind: 'log', event }),
});

function toOutputs(results: InferenceSession.ReturnType): RuntimeOutputs {
  const outputs: RuntimeOutputs = {};
  for (const [name, tensor] of Object.entries(results)) {
    outputs[name] = { type: tensor.type as RuntimeTensorType, dims: [...tensor.dims], data: tensor.data as RuntimeOutputs[string]['data'] };
  }
  return outputs;
}

async function handle(request: HostRequest): Promise<void> {
  switch (request.kind) {
    case 'open': {
      const acquired = await cache.acquire(request.model, request.options);
      const { key, executionProvider, source, session } = acquired;
      reply({
        kind: 'opened',
        id: request.id,
        session: { key, executionProvider, source, inputNames: [...session.inputNames], outputNames: [...session.outputNames] },
      });
      return;
    }
    case 'run': {
      const session = cache.held(request.key);
      const feeds: Record<string, Tensor> = {};
      for (const [name, tensor] of Object.entries(request.feeds)) feeds[name] = new Tensor(tensor.type, tensor.data, tensor.dims);
      const startedAt = performance.now();
      const results = request.fetches ? await session.run(feeds, request.fetches) : await session.run(feeds);
      const outputs = toOutputs(results);
      reply({ kind: 'ran', id: request.id, outputs, ms: performance.now() - startedAt }, transferList(outputs));
      return;
    }
    case 'close':
      await cache.release(request.key);
      reply({ kind: 'done', id: request.id });
      return;
    case 'shutdown':
      await cache.dispose();
      reply({ kind: 'done', id: request.id });
      port.close();
      return;
  }
}

// Requests are handled one at a time, in arrival order: the native runs are serial on this thread anyway, and
// ordering keeps close/shutdown from overtaking a run.
let queue: Promise<void> = Promise.resolve();
port.on('message', (request: HostRequest) => {
  queue = queue.then(() =>
    handle(request).catch((error: unknown) =>
      reply({ kind: 'failed', id: request.id, message: error instanceof Error ? error.message : String(error) }),
    ),
  );
});
