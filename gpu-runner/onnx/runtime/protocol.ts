// Messages between the main thread (SessionHost) and the session worker. Internal to this folder.
import type { ModelSource, SessionOptions, SessionSource } from './session-cache.ts';
import type { ExecutionProvider } from './execution-provider.ts';
import type { RuntimeFeeds, RuntimeOutputs } from './tensor.ts';
import type { ResidentStepRequest, ResidentStepResult, ResidentTrainerSpec } from './resident-trainer.ts';
import type { OptimizerState, ParamSet } from '../optim/types.ts';

export interface WorkerInit {
  cacheDir: string | null;
  maxIdleSessions?: number;
}

export type HostRequest =
  | { kind: 'open'; id: number; model: ModelSource; options: SessionOptions }
  // The same model by its digest (an earlier 'opened' reply's): answered 'open.miss' when its session is not live.
  | { kind: 'open.cached'; id: number; digest: string; options: SessionOptions }
  | { kind: 'run'; id: number; key: string; feeds: RuntimeFeeds; fetches?: string[] }
  | { kind: 'close'; id: number; key: string }
  | { kind: 'shutdown'; id: number }
  // Resident training state (see resident-trainer.ts): sessions are referenced by their keys.
  | { kind: 'trainer.open'; id: number; sessionKey: string; adamSessionKey?: string; spec: ResidentTrainerSpec }
  | { kind: 'trainer.step'; id: number; trainerId: number; request: ResidentStepRequest }
  // The forward graph's session (loss and extra outputs only) a trainer runs for loss-only requests.
  | { kind: 'trainer.forward'; id: number; trainerId: number; sessionKey: string }
  | { kind: 'trainer.snapshot'; id: number; trainerId: number }
  | { kind: 'trainer.close'; id: number; trainerId: number };

export interface OpenedSession {
  key: string;
  executionProvider: ExecutionProvider;
  source: SessionSource;
  inputNames: string[];
  outputNames: string[];
  /** Content digest of the model: reopen by it with 'open.cached'. */
  digest: string;
  /** Why an `auto` session runs on CPU (what the CUDA attempt reported), so the caller can say what `auto` chose. */
  cudaUnavailable?: string;
}

export type WorkerReply =
  | { kind: 'opened'; id: number; session: OpenedSession }
  | { kind: 'open.miss'; id: number }
  | { kind: 'ran'; id: number; outputs: RuntimeOutputs; ms: number }
  | { kind: 'done'; id: number }
  | { kind: 'trainer.opened'; id: number; trainerId: number }
  | { kind: 'trainer.stepped'; id: number; result: ResidentStepResult }
  | { kind: 'trainer.snapshot'; id: number; params: ParamSet; state: OptimizerState }
  | { kind: 'failed'; id: number; message: string }
  | { kind: 'log'; event: Record<string, unknown> };

/** The ArrayBuffers behind a set of tensors or typed arrays, deduplicated, for a postMessage transfer list. */
export function transferList(...sets: (RuntimeFeeds | RuntimeOutputs | ParamSet)[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const set of sets) {
    for (const entry of Object.values(set)) {
      const data = ArrayBuffer.isView(entry) ? entry : entry.data;
      if (data.buffer instanceof ArrayBuffer) buffers.add(data.buffer);
    }
  }
  return [...buffers];
}
