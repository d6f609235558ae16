// Bindings and settings of the Worker (wrangler.toml [vars], secrets, R2, Queues, Hyperdrive).
import type { JobMessage } from './jobs/messages.ts';

export type Env = {
  /** Production: Postgres through Hyperdrive. */
  HYPERDRIVE?: Hyperdrive;
  /** Local development and tests: a plain connection URL. */
  DATABASE_URL?: string;
  BUCKET: R2Bucket;
  /** Per-key request limit; absent means unlimited. */
  API_RATE_LIMITER?: RateLimit;
  JOBS_QUEUE: Queue<JobMessage>;
  WEBHOOKS_QUEUE: Queue<unknown>;
  RUNNER_URL: string;
  /** Shared with the runner; RUNNER_SECRET_PREVIOUS is still accepted on incoming events during a rotation. */
  RUNNER_SECRET: string;
  RUNNER_SECRET_PREVIOUS?: string;
  /** The edge's own public origin, for the events URL and signed input URLs given to the runner. */
  PUBLIC_URL?: string;
  JOB_LEASE_SECONDS?: string;
  JOB_MAX_ATTEMPTS?: string;
  DISPATCH_MAX_RETRIES?: string;
  WEBHOOK_ALLOW_HTTP_LOOPBACK?: string;
  /**
   * Secret: the key-encryption keys that seal webhook signing secrets at rest, `id:base64(32 bytes)[,id:base64…]`,
   * the first one active (edge/webhooks/README.md, "Sealed at rest").
   */
  WEBHOOK_SEALING_KEYS?: string;
  /** Multiplies every wait of the webhook retry schedule (0 < scale <= 1; tests only): edge/webhooks/retry-schedule.ts. */
  WEBHOOK_RETRY_SCALE?: string;
};

export type Settings = {
  leaseSeconds: number;
  maxAttempts: number;
  dispatchMaxRetries: number;
  publicUrl: string;
  allowHttpLoopbackWebhooks: boolean;
};

const DEFAULT_LEASE_SECONDS = 600;
const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_DISPATCH_MAX_RETRIES = 8;
const DEFAULT_PUBLIC_URL = 'http://127.0.0.1:8787';

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return parsed;
}

export function settingsOf(env: Env): Settings {
  return {
    leaseSeconds: positiveInt(env.JOB_LEASE_SECONDS, DEFAULT_LEASE_SECONDS, 'JOB_LEASE_SECONDS'),
    maxAttempts: positiveInt(env.JOB_MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS, 'JOB_MAX_ATTEMPTS'),
    dispatchMaxRetries: positiveInt(env.DISPATCH_MAX_RETRIES, DEFAULT_DISPATCH_MAX_RETRIES, 'DISPATCH_MAX_RETRIES'),
    publicUrl: (env.PUBLIC_URL ?? DEFAULT_PUBLIC_URL).replace(/\/+$/, ''),
    allowHttpLoopbackWebhooks: env.WEBHOOK_ALLOW_HTTP_LOOPBACK === 'true',
  };
}

export function runnerSecrets(env: Env): string[] {
  return [env.RUNNER_SECRET, env.RUNNER_SECRET_PREVIOUS].filter((s): s is string => typeof s === 'string' && s !== '');
}
