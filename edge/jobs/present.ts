// The public JSON of jobs (personalizations and generations), shared by the API and the webhook payloads.
import type { generationImages } from '../../db/schema.ts';
import { generationParams, personalizationParams, type JobRow } from './state.ts';

export type GenerationImageRow = typeof generationImages.$inferSelect;

const iso = (date: Date | null) => (date ? date.toISOString() : null);
const seconds = (from: Date | null, to: Date | null) =>
  from && to ? Math.max(0, (to.getTime() - from.getTime()) / 1000) : null;

function common(job: JobRow) {
  return {
    id: job.id,
    status: job.status,
    progress: { step: job.progressStep, total_steps: job.progressTotal },
    attempts: job.attempts,
    error: job.errorCode ? { code: job.errorCode, message: job.errorMessage ?? '' } : null,
    webhook_url: job.webhookUrl,
    webhook_events: job.webhookEvents,
    created_at: job.createdAt.toISOString(),
    dispatched_at: iso(job.dispatchedAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    timings: {
      queued_seconds: seconds(job.createdAt, job.startedAt ?? job.finishedAt),
      run_seconds: seconds(job.startedAt, job.finishedAt),
    },
  };
}

export function presentPersonalization(job: JobRow, weightsId: string | null) {
  const params = personalizationParams(job);
  return {
    object: 'personalization' as const,
    ...common(job),
    subject_id: job.subjectId,
    method: params.method,
    finetune: params.finetune,
    outputs: params.outputs,
    weights_id: weightsId,
  };
}

export function presentGeneration(job: JobRow, images: GenerationImageRow[], publicUrl: string) {
  return {
    object: 'generation' as const,
    ...common(job),
    weights_id: job.weightsId,
    params: generationParams(job),
    images: [...images]
      .sort((a, b) => a.index - b.index)
      .map((image) => ({
        index: image.index,
        url: `${publicUrl}/v1/generations/${job.id}/images/${image.index}`,
        content_type: image.contentType,
        width: image.width,
        height: image.height,
        seed: image.seed,
        byte_size: image.byteSize,
        sha256: image.sha256,
      })),
  };
}
