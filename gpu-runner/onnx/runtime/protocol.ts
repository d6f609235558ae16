// Messages between the main thread (SessionHost) and the session worker. Internal to this folder.
import type { ModelSource, SessionOptions, SessionSource } from './sessionCache.ts';
import type { ExecutionProvider } from './executionProvider.ts';
import type { RuntimeFeeds, RuntimeOutputs } from './tensor.ts';

export interface WorkerInit {
  cacheDir: string | null;
  maxIdleSessions?: number;
}

export type HostRequest =
  | { kind: 'open'; id: number; model: ModelSource; options: SessionOptions }
  | { kind: 'run'; id: number; key: string; feeds: RuntimeFeeds; fetches?: string[] }
  | { kind: 'close'; id: number; key: string }
  | { kind: 'shutdown'; id: number };

export interface OpenedSession {
  key: string;
  executionProvider: ExecutionProvider;
  source: SessionSource;
  inputNames: string[];
  outputNames: string[];
}

export type WorkerReply =
  | { kind: 'opened'; id: number; session: OpenedSession }
  | { kind: 'ran'; id: number; outputs: RuntimeOutputs; ms: number }
  | { kind: 'done'; id: number }
  | { kind: 'failed'; id: number; message: string }
  | { kind: 'log'; event: Record<string, unknown> };

/** The ArrayBuffers behind a set of tensors, deduplicated, for a postMessage transfer list. */
export function transferList(tensors: RuntimeFeeds | RuntimeOutputs): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const tensor of Object.values(tensors)) {
    if (tensor.data.buffer instanceof ArrayBuffer) buffers.add(tensor.data.buffer);
  }
  return [...buffers];
}
