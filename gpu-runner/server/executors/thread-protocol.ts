// Messages between ThreadExecutor (main thread) and the executor worker thread. Internal to this folder.
import type { GenerateInput, GenerateOutput, PersonalizeInput, PersonalizeOutput } from '../jobs/executor.ts';
import type { AbortReason } from '../jobs/job-queue.ts';
import type { SessionKindStatus } from '../../onnx/runtime/index.ts';

export type ThreadWorkerData = {
  /** URL of a module exporting `createExecutor(options): JobExecutor | Promise<JobExecutor>`. */
  moduleUrl: string;
  options: unknown;
};

export type CallRequest =
  | { type: 'call'; id: number; method: 'personalize'; input: PersonalizeInput }
  | { type: 'call'; id: number; method: 'generate'; input: GenerateInput };

export type HostMessage = CallRequest | { type: 'abort'; id: number; reason: AbortReason } | { type: 'close' };

/** An error as it crosses threads: the name selects the class on the other side. */
export type SerializedError = { name: string; message: string; stack?: string; reason?: AbortReason };

export type WorkerMessage =
  | { type: 'ready'; description: string; warnings: string[] }
  | { type: 'warmup-failed'; error: SerializedError }
  | { type: 'progress'; id: number; step: number; totalSteps: number }
  // The provider of each session kind the thread has opened, sent after warmup and before each call's outcome.
  | { type: 'sessions'; kinds: Record<string, SessionKindStatus> }
  | { type: 'result'; id: number; output: PersonalizeOutput | GenerateOutput }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> }
  | { type: 'closed' };

/** The buffers of an input or output, moved rather than copied across the thread boundary. */
export function transferables(value: PersonalizeInput | GenerateInput | PersonalizeOutput | GenerateOutput): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  const add = (bytes: Uint8Array) => {
    // Only whole, unshared buffers may be transferred; a view into a larger buffer is copied instead.
    if (bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) buffers.add(bytes.buffer);
  };
  if ('images' in value && Array.isArray(value.images)) {
    for (const item of value.images) add('image' in item ? item.image.data : item.data);
  }
  if ('files' in value) for (const file of value.files) add(file.bytes);
  if ('weights' in value) add(value.weights.bytes);
  return [...buffers];
}
