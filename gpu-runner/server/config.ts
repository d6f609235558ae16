// The runner's configuration, read once from the environment and validated (zod at the boundary).
import { z } from 'zod';
import { MIN_SECRET_LENGTH } from '../../contract/index.ts';
import { LOG_LEVELS } from './log.ts';
import { INTRA_OP_SPINNING_ENV } from '../onnx/runtime/session-cache.ts';
import { SAMPLING_PRECISION_SETTINGS, type SamplingPrecisionSetting } from '../models/precision.ts';

/** Container platforms send SIGKILL 30 s after SIGTERM by default; the rest of that is for aborting and flushing. */
const DEFAULT_SHUTDOWN_GRACE_MS = 20_000;
/** Progress events at most once a second per job (docs/architecture.md). */
const DEFAULT_PROGRESS_INTERVAL_MS = 1_000;
/** The edge accepts up to 10 images of 10 MB (docs/api.md); base64 inflates by 4/3. Larger inputs come as URLs. */
const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** The edge accepts images up to 4096 px a side (docs/api.md). */
const DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096;

const integer = (min: number, fallback: number) => z.coerce.number().int().min(min).default(fallback);

const EnvSchema = z.object({
  RUNNER_HOST: z.string().min(1).default('0.0.0.0'),
  RUNNER_PORT: z.coerce.number().int().min(0).max(65_535).default(8788),
  /** Shared with the edge; signs events and verifies job requests. */
  RUNNER_SECRET: z.string().min(MIN_SECRET_LENGTH, `RUNNER_SECRET must be at least ${MIN_SECRET_LENGTH} characters`),
  /** Accepted for verification only, during a secret rotation. */
  RUNNER_SECRET_PREVIOUS: z.string().min(MIN_SECRET_LENGTH).optional(),
  /** Jobs run at once: one per GPU (docs/architecture.md). */
  RUNNER_CONCURRENCY: integer(1, 1),
  /** Jobs waiting beyond the running ones; past this the runner answers 503 with Retry-After. */
  RUNNER_QUEUE_CAPACITY: integer(0, 16),
  /** Outbox of unacknowledged events and other state that must survive a restart. */
  RUNNER_STATE_DIR: z.string().min(1).default('.data/runner'),
  /** The model pack folder; empty selects the default pack (the trained world pack when complete, else the tiny pack). */
  RUNNER_MODEL_DIR: z.string().optional(),
  /** The diffusers weight variant (`fp16` loads `*.fp16.safetensors`); unset, a folder holding only one variant uses it. */
  RUNNER_MODEL_VARIANT: z.string().regex(/^[A-Za-z0-9_-]+$/, 'RUNNER_MODEL_VARIANT is a name like fp16').optional(),
  RUNNER_EXECUTION_PROVIDER: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  /** The sampling graphs' precision (text encoder, UNet, VAE decoder): auto is fp16 on CUDA, fp32 on the CPU. */
  RUNNER_SAMPLING_PRECISION: z.enum(SAMPLING_PRECISION_SETTINGS).default('auto'),
  RUNNER_SHUTDOWN_GRACE_MS: integer(0, DEFAULT_SHUTDOWN_GRACE_MS),
  RUNNER_PROGRESS_INTERVAL_MS: integer(0, DEFAULT_PROGRESS_INTERVAL_MS),
  RUNNER_MAX_REQUEST_BYTES: integer(1024, DEFAULT_MAX_REQUEST_BYTES),
  RUNNER_MAX_IMAGE_PIXELS: integer(64 * 64, DEFAULT_MAX_IMAGE_PIXELS),
  /** First retry delay for an unacknowledged event; doubles up to the maximum (with jitter). */
  RUNNER_EVENT_RETRY_MIN_MS: integer(1, 250),
  RUNNER_EVENT_RETRY_MAX_MS: integer(1, 30_000),
  RUNNER_EVENT_TIMEOUT_MS: integer(1, 10_000),
  /** Finished jobs stay answerable (GET, duplicate detection) this long. */
  RUNNER_JOB_RETENTION_MS: integer(0, 60 * 60 * 1000),
  RUNNER_LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
});

export type RunnerConfig = {
  host: string;
  port: number;
  secret: string;
  verificationSecrets: string[];
  concurrency: number;
  queueCapacity: number;
  stateDir: string;
  modelDir: string | undefined;
  modelVariant: string | undefined;
  executionProvider: 'auto' | 'cpu' | 'cuda';
  samplingPrecision: SamplingPrecisionSetting;
  shutdownGraceMs: number;
  progressIntervalMs: number;
  maxRequestBytes: number;
  maxImagePixels: number;
  eventRetryMinMs: number;
  eventRetryMaxMs: number;
  eventTimeoutMs: number;
  jobRetentionMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Record<string, string | undefined> = process.env): RunnerConfig {
  const parsed = EnvSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new ConfigError(`invalid runner configuration: ${problems}`);
  }
  const e = parsed.data;
  if (e.RUNNER_EVENT_RETRY_MAX_MS < e.RUNNER_EVENT_RETRY_MIN_MS) {
    throw new ConfigError('invalid runner configuration: RUNNER_EVENT_RETRY_MAX_MS is below RUNNER_EVENT_RETRY_MIN_MS');
  }
  return {
    host: e.RUNNER_HOST,
    port: e.RUNNER_PORT,
    secret: e.RUNNER_SECRET,
    verificationSecrets: [e.RUNNER_SECRET, ...(e.RUNNER_SECRET_PREVIOUS ? [e.RUNNER_SECRET_PREVIOUS] : [])],
    concurrency: e.RUNNER_CONCURRENCY,
    queueCapacity: e.RUNNER_QUEUE_CAPACITY,
    stateDir: e.RUNNER_STATE_DIR,
    modelDir: e.RUNNER_MODEL_DIR,
    modelVariant: e.RUNNER_MODEL_VARIANT,
    executionProvider: e.RUNNER_EXECUTION_PROVIDER,
    samplingPrecision: e.RUNNER_SAMPLING_PRECISION,
    shutdownGraceMs: e.RUNNER_SHUTDOWN_GRACE_MS,
    progressIntervalMs: e.RUNNER_PROGRESS_INTERVAL_MS,
    maxRequestBytes: e.RUNNER_MAX_REQUEST_BYTES,
    maxImagePixels: e.RUNNER_MAX_IMAGE_PIXELS,
    eventRetryMinMs: e.RUNNER_EVENT_RETRY_MIN_MS,
    eventRetryMaxMs: e.RUNNER_EVENT_RETRY_MAX_MS,
    eventTimeoutMs: e.RUNNER_EVENT_TIMEOUT_MS,
    jobRetentionMs: e.RUNNER_JOB_RETENTION_MS,
    logLevel: e.RUNNER_LOG_LEVEL,
  };
}

/**
 * Process-wide onnxruntime defaults for a runner, set before any session exists (sessions live in worker threads,
 * which read them from the shared environment). Intra-op threads stop spin-waiting after a run: a runner alternates
 * model compute with HTTP, encoding and events, and spinning threads took those cores (bench:runner measured the
 * generation overhead 4.3–6.8% with spinning, 4.1–4.4% without, and model compute itself up to 2× faster under load).
 * An explicit HDB_ORT_INTRA_OP_SPINNING in the environment wins.
 */
export function applyRunnerRuntimeDefaults(env: NodeJS.ProcessEnv = process.env): void {
  env[INTRA_OP_SPINNING_ENV] ??= '0';
}
