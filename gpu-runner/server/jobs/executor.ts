// What the service needs from the models, and nothing more: the service queues, reports and encodes; an executor
// computes. Real executors call the personalization library and the sampler, whose onnxruntime runs happen in the
// engine's session worker thread, so the service's event loop stays free for HTTP and events.
import type { SessionKindStatus } from '../../onnx/runtime/index.ts';
import type { FaceBox, FinetuneOptions, GenerationParams, PersonalizationPayload, RunnerError, WeightsCheckResult } from '../../../contract/index.ts';
import type { AbortReason } from './job-queue.ts';

export type PersonalizationMethod = PersonalizationPayload['method'];
export type WeightFormat = PersonalizationPayload['outputs'][number]['format'];
export type WeightDtype = PersonalizationPayload['outputs'][number]['dtype'];

/** 8-bit sRGB pixels, row-major, channels interleaved (HWC). */
export type RgbImage = { width: number; height: number; channels: 3; data: Uint8Array };
/** A subject's photo as decoded, with the face box its owner gave (in these upright pixels); the centre when absent. */
export type SubjectPhoto = RgbImage & { faceBox?: FaceBox };

export type PersonalizeInput = {
  jobId: string;
  method: PersonalizationMethod;
  /** Every photo is used (the prediction combines them, the finetune takes them in turn). */
  images: SubjectPhoto[];
  finetune: FinetuneOptions;
  outputs: Array<{ format: WeightFormat; dtype: WeightDtype }>;
};

export type PersonalizeOutput = {
  /** Time inside the model code, measured where it ran (a worker thread); the service measures it otherwise. */
  computeMs?: number;
  baseModelId: string;
  rank: number;
  layers: string[];
  numParameters: number;
  /** One `.safetensors` file per requested output. */
  files: Array<{ format: WeightFormat; dtype: WeightDtype; bytes: Uint8Array }>;
};

export type GenerateInput = {
  jobId: string;
  weights: { format: WeightFormat; dtype: WeightDtype; bytes: Uint8Array };
  baseModelId: string;
  params: GenerationParams;
};

export type GenerateOutput = {
  /** As in PersonalizeOutput. */
  computeMs?: number;
  /** Raw pixels; the service encodes them as PNG. */
  images: Array<{ index: number; seed: number; image: RgbImage }>;
};

export type ExecutionContext = {
  /** Aborted on cancel or shutdown; executors check it between steps (`throwIfAborted`). */
  signal: AbortSignal;
  /** Called after each step; the service forwards at most one progress event a second. */
  reportProgress: (step: number, totalSteps: number) => void;
};

export interface JobExecutor {
  /** Short human description for logs and /readyz, e.g. "tiny pack, cpu". */
  readonly description: string;
  /** Loads models and builds sessions; /readyz answers ready once it resolves. */
  warmup(): Promise<void>;
  /** What an operator should know after warmup (e.g. an untrained hypernetwork); logged by the service. */
  readonly warnings?: readonly string[];
  /**
   * The provider each kind of session runs on, as opened so far (or why it failed to open): /readyz, /metrics and
   * the startup log show it, and with RUNNER_EXECUTION_PROVIDER=cuda a failed kind makes the runner not ready.
   */
  sessionKinds?(): Record<string, SessionKindStatus>;
  personalize(input: PersonalizeInput, context: ExecutionContext): Promise<PersonalizeOutput>;
  generate(input: GenerateInput, context: ExecutionContext): Promise<GenerateOutput>;
  /**
   * Reads a native weight file against the loaded pack as `generate` would (throws InvalidInputError when it would
   * refuse it) and reports what it holds. Absent: the runner cannot check imports (its route answers 501).
   */
  checkWeights?(bytes: Uint8Array): WeightsCheckResult;
  close(): Promise<void>;
}

/** Thrown between steps when the job's signal is aborted. */
export class JobAbortedError extends Error {
  override name = 'JobAbortedError';
  constructor(readonly reason: AbortReason) {
    super(reason === 'canceled' ? 'the job was canceled' : 'the runner is shutting down');
  }
}

/** Input the runner cannot use (bad image, bad weights, hash mismatch): retrying will not help. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** The model failed on this input (non-finite values, out of memory). */
export class ModelError extends Error {
  override name = 'ModelError';
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new JobAbortedError(signal.reason === 'shutdown' ? 'shutdown' : 'canceled');
}

/** Maps whatever an execution threw to the contract's error (CONTRACT.md `error.code`). */
export function toRunnerError(error: unknown): RunnerError {
  const message = (error instanceof Error ? error.message : String(error)).slice(0, 2000) || 'unknown error';
  if (error instanceof JobAbortedError) {
    return error.reason === 'canceled'
      ? { code: 'canceled', message, retryable: false }
      : { code: 'shutdown', message: 'the runner stopped before the job finished; dispatch it again', retryable: true };
  }
  if (error instanceof InvalidInputError) return { code: 'invalid_input', message, retryable: false };
  if (error instanceof ModelError) return { code: 'model_error', message, retryable: false };
  return { code: 'internal', message, retryable: true };
}
