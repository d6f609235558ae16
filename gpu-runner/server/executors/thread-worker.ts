// The executor's worker thread: loads the executor module, warms it up, and runs calls with progress and abort.
// Model code (onnxruntime's synchronous `run`, tensor math between steps) blocks this thread, never the service's.
import { parentPort, workerData } from 'node:worker_threads';
import { JobAbortedError, type ExecutionContext, type JobExecutor } from '../jobs/executor.ts';
import {
  transferables,
  type HostMessage,
  type SerializedError,
  type ThreadWorkerData,
  type WorkerMessage,
} from './thread-protocol.ts';

if (!parentPort) throw new Error('thread-worker.ts must run in a worker thread');
const port = parentPort;
const init = workerData as ThreadWorkerData;

const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

function serialize(error: unknown): SerializedError {
  if (error instanceof JobAbortedError) return { name: error.name, message: error.message, reason: error.reason };
  if (error instanceof Error) return { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { name: 'Error', message: String(error) };
}

const controllers = new Map<number, AbortController>();
let executor: JobExecutor | undefined;

/** Sessions open lazily (a job's first UNet, its trainer): the main thread learns their providers as they appear. */
function postSessionKinds(): void {
  if (executor?.sessionKinds) post({ type: 'sessions', kinds: executor.sessionKinds() });
}

try {
  const module = (await import(init.moduleUrl)) as { createExecutor?: (options: unknown) => JobExecutor | Promise<JobExecutor> };
  if (typeof module.createExecutor !== 'function') throw new Error(`${init.moduleUrl} does not export createExecutor`);
  executor = await module.createExecutor(init.options);
  await executor.warmup().finally(postSessionKinds);
  post({ type: 'ready', description: executor.description, warnings: [...(executor.warnings ?? [])] });
} catch (error) {
  post({ type: 'warmup-failed', error: serialize(error) });
  port.close();
}

port.on('message', (message: HostMessage) => {
  switch (message.type) {
    case 'call': {
      const controller = new AbortController();
      controllers.set(message.id, controller);
      const context: ExecutionContext = {
        signal: controller.signal,
        reportProgress: (step, totalSteps) => post({ type: 'progress', id: message.id, step, totalSteps }),
      };
      const startedAt = performance.now();
      const ready = executor!;
      const call = message.method === 'personalize' ? ready.personalize(message.input, context) : ready.generate(message.input, context);
      call.then(
        (output) => {
          postSessionKinds();
          post({ type: 'result', id: message.id, output: { ...output, computeMs: performance.now() - startedAt } }, transferables(output));
        },
        (error: unknown) => {
          postSessionKinds();
          post({ type: 'error', id: message.id, error: serialize(error) });
        },
      ).finally(() => controllers.delete(message.id));
      return;
    }
    case 'abort':
      controllers.get(message.id)?.abort(message.reason);
      return;
    case 'close':
      void (executor?.close() ?? Promise.resolve()).finally(() => {
        post({ type: 'closed' });
        port.close();
      });
      return;
  }
});
