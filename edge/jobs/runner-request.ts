// Builds the contract's JobRequest for a job from Postgres and R2.
import { and, asc, eq } from 'drizzle-orm';
import { subjectImages, weightFiles } from '../../db/schema.ts';
import {
  EDGE_PATHS,
  bytesToBase64,
  type BlobSource,
  type InputImage,
  type JobRequest,
} from '../../contract/index.ts';
import type { Queryable as Database } from '../db/client.ts';
import { settingsOf, type Env } from '../env.ts';
import { signedInputUrl } from './input-urls.ts';
import { generationParams, personalizationParams, type JobRow } from './state.ts';

/** Inputs up to this total size travel inline in the job request; bigger ones as signed URLs. */
export const INLINE_INPUT_LIMIT_BYTES = 4 * 1024 * 1024;

export class MissingInputError extends Error {}

async function source(env: Env, key: string, sha256: string, byteSize: number, inline: boolean): Promise<BlobSource> {
  const settings = settingsOf(env);
  if (!inline) return { url: await signedInputUrl(settings.publicUrl, env.RUNNER_SECRET, key), sha256, byte_size: byteSize };
  const object = await env.BUCKET.get(key);
  if (!object) throw new MissingInputError(`input ${key} is missing from storage`);
  return { data_base64: bytesToBase64(new Uint8Array(await object.arrayBuffer())), sha256, byte_size: byteSize };
}

export async function buildJobRequest(db: Database, env: Env, job: JobRow, attempt: number): Promise<JobRequest> {
  const settings = settingsOf(env);
  const envelope = {
    job_id: job.id,
    attempt,
    events_url: `${settings.publicUrl}${EDGE_PATHS.runnerEvents}`,
    lease_seconds: settings.leaseSeconds,
  };
  if (job.kind === 'personalization') {
    const params = personalizationParams(job);
    if (!job.subjectId) throw new MissingInputError('the subject of this personalization was deleted');
    const images = await db
      .select()
      .from(subjectImages)
      .where(and(eq(subjectImages.subjectId, job.subjectId), eq(subjectImages.status, 'stored')))
      .orderBy(asc(subjectImages.id));
    if (images.length === 0) throw new MissingInputError('the subject has no stored images');
    const inline = images.reduce((sum, image) => sum + image.byteSize, 0) <= INLINE_INPUT_LIMIT_BYTES;
    const inputs: InputImage[] = [];
    for (const image of images) {
      inputs.push({
        content_type: image.contentType as InputImage['content_type'],
        width: image.width,
        height: image.height,
        source: await source(env, image.r2Key, image.sha256, image.byteSize, inline),
        ...(image.faceBox ? { face_box: image.faceBox } : {}),
      });
    }
    return { ...envelope, kind: 'personalization', payload: { method: params.method, images: inputs, finetune: params.finetune, outputs: params.outputs } };
  }
  const params = generationParams(job);
  if (!job.weightsId) throw new MissingInputError('the generation names no weights');
  const files = await db.select().from(weightFiles).where(and(eq(weightFiles.weightsId, job.weightsId), eq(weightFiles.format, 'lidb')));
  // fp16 is what the runner computes in on GPU anyway; fp32 when that is all there is.
  const file = files.find((f) => f.dtype === 'fp16') ?? files.find((f) => f.dtype === 'fp32');
  if (!file) throw new MissingInputError('the weights have no LiDB file');
  const { base_model_id, ...generation } = params;
  return {
    ...envelope,
    kind: 'generation',
    payload: {
      weights: {
        format: 'lidb',
        dtype: file.dtype as 'fp16' | 'fp32',
        source: await source(env, file.r2Key, file.sha256, file.byteSize, file.byteSize <= INLINE_INPUT_LIMIT_BYTES),
      },
      base_model_id,
      params: generation,
    },
  };
}
