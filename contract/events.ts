// Events the runner POSTs to the edge's `/internal/runner/events`, one per request.
import { z } from 'zod';
import { WeightDtype, WeightFormat, PersonalizationMethod } from './jobs.ts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'lowercase hex SHA-256');

export const WeightFile = z
  .object({
    format: WeightFormat,
    dtype: WeightDtype,
    /** `.safetensors` bytes. */
    data_base64: z.string().min(1),
    sha256,
    byte_size: z.number().int().positive(),
  })
  .strict();
export type WeightFile = z.infer<typeof WeightFile>;

export const PersonalizationResult = z
  .object({
    kind: z.literal('personalization'),
    method: PersonalizationMethod,
    base_model_id: z.string().min(1),
    /** The low-rank factors' rank; 0 for `textual-inversion`, which learns embedding rows instead. */
    rank: z.number().int().min(0),
    /** Names of the adapted layers (UNet and text encoder), in file order; textual inversion: the token table. */
    layers: z.array(z.string().min(1)).min(1),
    num_parameters: z.number().int().positive(),
    files: z.array(WeightFile).min(1),
  })
  .strict()
  .refine((result) => result.rank >= 1 || result.method === 'textual-inversion', {
    message: 'rank must be at least 1 (0 only for textual-inversion)',
    path: ['rank'],
  });
export type PersonalizationResult = z.infer<typeof PersonalizationResult>;

export const GeneratedImage = z
  .object({
    index: z.number().int().min(0),
    content_type: z.literal('image/png'),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    seed: z.number().int().min(0),
    data_base64: z.string().min(1),
    sha256,
    byte_size: z.number().int().positive(),
  })
  .strict();
export type GeneratedImage = z.infer<typeof GeneratedImage>;

export const GenerationResult = z
  .object({ kind: z.literal('generation'), images: z.array(GeneratedImage).min(1) })
  .strict();
export type GenerationResult = z.infer<typeof GenerationResult>;

export const JobResult = z.discriminatedUnion('kind', [PersonalizationResult, GenerationResult]);
export type JobResult = z.infer<typeof JobResult>;

export const RUNNER_ERROR_CODES = [
  'invalid_input', // bad image, bad parameters: retrying will not help
  'model_error', // the model failed (NaN, OOM on a given input)
  'canceled', // acknowledged cancellation
  'shutdown', // the runner is stopping; the edge should re-dispatch
  'internal', // anything else
] as const;

export const RunnerError = z
  .object({
    code: z.enum(RUNNER_ERROR_CODES),
    message: z.string().min(1).max(2000),
    /** True when the same job may succeed on another attempt (another runner, later). */
    retryable: z.boolean(),
  })
  .strict();
export type RunnerError = z.infer<typeof RunnerError>;

const eventEnvelope = {
  /** Unique per event; the edge applies each event id once and acknowledges duplicates. */
  event_id: z.string().min(1).max(64),
  job_id: z.string().min(1).max(64),
  attempt: z.number().int().min(1),
  occurred_at: z.iso.datetime(),
};

export const RunnerEvent = z.discriminatedUnion('type', [
  z.object({ ...eventEnvelope, type: z.literal('started') }).strict(),
  z
    .object({
      ...eventEnvelope,
      type: z.literal('progress'),
      step: z.number().int().min(0),
      total_steps: z.number().int().min(1),
    })
    .strict()
    .refine((e) => e.step <= e.total_steps, { message: 'step must not exceed total_steps', path: ['step'] }),
  z.object({ ...eventEnvelope, type: z.literal('succeeded'), result: JobResult }).strict(),
  z.object({ ...eventEnvelope, type: z.literal('failed'), error: RunnerError }).strict(),
]);
export type RunnerEvent = z.infer<typeof RunnerEvent>;
export type RunnerEventType = RunnerEvent['type'];

/** The edge's answer to an event: 200 with this body, also for duplicates and for events it ignores as stale. */
export const EventAck = z.object({
  event_id: z.string(),
  outcome: z.enum(['applied', 'duplicate', 'stale']),
  /** True when the job was canceled at the edge: the runner should stop working on it. */
  cancel: z.boolean(),
});
export type EventAck = z.infer<typeof EventAck>;
