// The edge ↔ runner contract (CONTRACT.md beside it). Imported by both sides: zod and WebCrypto only.
export * from './jobs.ts';
export * from './events.ts';
export * from './claims.ts';
export * from './weights-check.ts';
export * from './signing.ts';
export { bytesToBase64, base64ToBytes, sha256Hex } from './base64.ts';

/** Paths on each side. */
export const RUNNER_PATHS = {
  jobs: '/v1/jobs',
  job: (jobId: string) => `/v1/jobs/${encodeURIComponent(jobId)}`,
  weightsCheck: '/v1/weights/check',
} as const;
export const EDGE_PATHS = { runnerEvents: '/internal/runner/events', runnerClaims: '/internal/runner/claims' } as const;
