// The worker thread that owns the onnxruntime sessions. `session.run` is synchronous native work that would block
// the event loop of whichever thread calls it (docs/engine.md), so it happens here, not on the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { transferList, type HostRequest, type WorkerInit, type WorkerReply } from './protocol.ts';
import { knownCudaAvailability } from './execution-provider.ts';
import { SessionCache } from './session-cache.ts';
import { ResidentTrainer } from './resident-trainer.ts';
import type { RuntimeOutputs, RuntimeTensorType } from './tensor.ts';

if (!parentPort) throw new Error('session-worker.ts must run in a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

const trainers = new Map<number, ResidentTrainer>();
let nextTrainerId = 1;

function trainer(id: number): ResidentTrainer {
  const found = trainers.get(id);
  if (!found) throw new Error(`no open trainer ${id}`);
  return found;
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
    case 'open':
    case 'open.cached': {
      const acquired = request.kind === 'open' ? await cache.acquire(request.model, request.options) : await cache.acquireCached(request.digest, request.options);
      if (!acquired) {
        reply({ kind: 'open.miss', id: request.id });
        return;
      }
      const { key, executionProvider, source, session, digest } = acquired;
      const cuda = knownCudaAvailability();
      const cudaUnavailable = executionProvider === 'cpu' && cuda?.available === false ? (cuda.reason ?? 'CUDA is not available') : undefined;
      reply({
        kind: 'opened',
        id: request.id,
        session: {
          key,
          executionProvider,
          source,
          digest,
          inputNames: [...session.inputNames],
          outputNames: [...session.outputNames],
          ...(cudaUnavailable ? { cudaUnavailable } : {}),
        },
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
    case 'trainer.open': {
      const adamSession = request.adamSessionKey ? cache.held(request.adamSessionKey) : undefined;
      const trainerId = nextTrainerId++;
      trainers.set(trainerId, new ResidentTrainer(request.spec, cache.held(request.sessionKey), adamSession));
      reply({ kind: 'trainer.opened', id: request.id, trainerId });
      return;
    }
    case 'trainer.step': {
      const result = await trainer(request.trainerId).run(request.request);
      reply({ kind: 'trainer.stepped', id: request.id, result }, transferList(result.grads, result.outputs));
      return;
    }
    case 'trainer.forward':
      trainer(request.trainerId).attachForward(cache.held(request.sessionKey));
      reply({ kind: 'done', id: request.id });
      return;
    case 'trainer.snapshot': {
      const { params, state } = trainer(request.trainerId).snapshot();
      reply({ kind: 'trainer.snapshot', id: request.id, params, state }, transferList(params, ...Object.values(state.slots)));
      return;
    }
    case 'trainer.close':
      trainers.delete(request.trainerId);
      reply({ kind: 'done', id: request.id });
      return;
    case 'shutdown':
      trainers.clear();
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
