// Runs a JobExecutor in a worker thread (onnxruntime's `run` blocks the event loop it is called from). The
// service sees an ordinary JobExecutor; progress and aborts cross the thread boundary as messages, inputs and
// outputs move by transfer. If the worker dies, the jobs it held fail (retryable) and the next call starts a new one.
import { Worker } from 'node:worker_threads';
import {
  InvalidInputError,
  JobAbortedError,
  ModelError,
  type ExecutionContext,
  type GenerateInput,
  type GenerateOutput,
  type JobExecutor,
  type PersonalizeInput,
  type PersonalizeOutput,
} from '../jobs/executor.ts';
import type { AbortReason } from '../jobs/job-queue.ts';
import type { SessionKindStatus } from '../../onnx/runtime/index.ts';
import type { Logger } from '../log.ts';
import {
  transferables,
  type CallRequest,
  type HostMessage,
  type SerializedError,
  type ThreadWorkerData,
  type WorkerMessage,
} from './thread-protocol.ts';

/** How long `close` waits for the executor to release its models before the thread is terminated. */
const CLOSE_TIMEOUT_MS = 5_000;

type Pending = { resolve: (output: PersonalizeOutput | GenerateOutput) => void; reject: (error: Error) => void; context: ExecutionContext };

type Running = { worker: Worker; ready: Promise<void>; pending: Map<number, Pending> };

export class ThreadExecutor implements JobExecutor {
  private running: Running | undefined;
  private nextId = 1;
  private workerDescription: string | undefined;
  private workerWarnings: readonly string[] = [];
  private workerSessionKinds: Record<string, SessionKindStatus> = {};

  constructor(
    private readonly options: {
      /** Module exporting `createExecutor(options)`, evaluated inside the worker. */
      moduleUrl: URL;
      executorOptions: unknown;
      description: string;
      log: Logger;
    },
  ) {}

  get description(): string {
    return this.workerDescription ? `${this.workerDescription} (worker thread)` : this.options.description;
  }

  get warnings(): readonly string[] {
    return this.workerWarnings;
  }

  sessionKinds(): Record<string, SessionKindStatus> {
    return this.workerSessionKinds;
  }

  warmup(): Promise<void> {
    return this.ensureWorker().ready;
  }

  personalize(input: PersonalizeInput, context: ExecutionContext): Promise<PersonalizeOutput> {
    return this.call({ type: 'call', id: this.nextId++, method: 'personalize', input }, context) as Promise<PersonalizeOutput>;
  }

  generate(input: GenerateInput, context: ExecutionContext): Promise<GenerateOutput> {
    return this.call({ type: 'call', id: this.nextId++, method: 'generate', input }, context) as Promise<GenerateOutput>;
  }

  async close(): Promise<void> {
    const running = this.running;
    if (!running) return;
    this.running = undefined;
    const closed = new Promise<void>((resolve) => {
      running.worker.on('message', (message: WorkerMessage) => message.type === 'closed' && resolve());
      running.worker.once('exit', () => resolve());
    });
    running.worker.postMessage({ type: 'close' } satisfies HostMessage);
    const timer = setTimeout(() => void running.worker.terminate(), CLOSE_TIMEOUT_MS);
    await closed;
    clearTimeout(timer);
    await running.worker.terminate();
  }

  private async call(request: CallRequest, context: ExecutionContext): Promise<PersonalizeOutput | GenerateOutput> {
    const running = this.ensureWorker();
    await running.ready;
    if (context.signal.aborted) throw new JobAbortedError(context.signal.reason === 'shutdown' ? 'shutdown' : 'canceled');
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const reason: AbortReason = context.signal.reason === 'shutdown' ? 'shutdown' : 'canceled';
        running.worker.postMessage({ type: 'abort', id: request.id, reason } satisfies HostMessage);
      };
      context.signal.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => context.signal.removeEventListener('abort', onAbort);
      running.pending.set(request.id, {
        resolve: (output) => {
          cleanup();
          resolve(output);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
        context,
      });
      running.worker.postMessage(request, transferables(request.input));
    });
  }

  private ensureWorker(): Running {
    if (this.running) return this.running;
    const data: ThreadWorkerData = { moduleUrl: this.options.moduleUrl.href, options: this.options.executorOptions };
    const worker = new Worker(new URL('./thread-worker-entry.mjs', import.meta.url), { workerData: data });
    const pending = new Map<number, Pending>();
    const log = this.options.log;
    let settleReady: { resolve: () => void; reject: (error: Error) => void } | undefined;
    const ready = new Promise<void>((resolve, reject) => (settleReady = { resolve, reject }));
    ready.catch(() => undefined); // Observed by warmup() or the first call.
    const running: Running = { worker, ready, pending };
    this.running = running;

    worker.on('message', (message: WorkerMessage) => {
      switch (message.type) {
        case 'ready':
          this.workerDescription = message.description;
          this.workerWarnings = message.warnings;
          settleReady?.resolve();
          return;
        case 'warmup-failed':
          settleReady?.reject(deserialize(message.error));
          return;
        case 'sessions':
          this.workerSessionKinds = message.kinds;
          return;
        case 'progress':
          pending.get(message.id)?.context.reportProgress(message.step, message.totalSteps);
          return;
        case 'result':
          pending.get(message.id)?.resolve(message.output);
          pending.delete(message.id);
          return;
        case 'error':
          pending.get(message.id)?.reject(deserialize(message.error));
          pending.delete(message.id);
          return;
        case 'log':
          log[message.level](message.message, message.fields);
          return;
        case 'closed':
          return;
      }
    });
    const fail = (error: Error) => {
      if (this.running === running) this.running = undefined;
      settleReady?.reject(error);
      for (const call of pending.values()) call.reject(error);
      pending.clear();
    };
    worker.on('error', (error) => {
      log.error('executor worker crashed', { error });
      fail(new Error(`the executor worker crashed: ${error.message}`));
    });
    worker.on('exit', (code) => fail(new Error(`the executor worker exited (code ${code})`)));
    return running;
  }
}

function deserialize(error: SerializedError): Error {
  let result: Error;
  switch (error.name) {
    case 'JobAbortedError':
      result = new JobAbortedError(error.reason ?? 'canceled');
      break;
    case 'InvalidInputError':
      result = new InvalidInputError(error.message);
      break;
    case 'ModelError':
      result = new ModelError(error.message);
      break;
    default:
      result = new Error(error.message);
      result.name = error.name;
  }
  if (error.stack) result.stack = error.stack;
  return result;
}
