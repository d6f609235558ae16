// Contract-shaped jobs and a signed client, as the edge would send them.
import { createHash, randomUUID } from 'node:crypto';
import sharp from 'sharp';
import {
  JobRequest,
  RUNNER_PATHS,
  signedFetch,
  type GenerationParams,
  type JobRequest as JobRequestType,
} from '../../../contract/index.ts';
import { serializeSafetensors } from '../../../gpu-runner/io/safetensors.ts';

export const TEST_SECRET = 'test-runner-secret-0123456789abcdef-0123456789';

export function newJobId(): string {
  return `job_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
}

export function inlineSource(bytes: Uint8Array) {
  return {
    data_base64: Buffer.from(bytes).toString('base64'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    byte_size: bytes.byteLength,
  };
}

/** A small face-sized PNG with a gradient (real pixels, so decoding does work). */
export async function testPhoto(width = 96, height = 96, format: 'png' | 'jpeg' = 'png'): Promise<Uint8Array> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x + y) * 127) / (width + height);
    }
  }
  const image = sharp(data, { raw: { width, height, channels: 3 } });
  return new Uint8Array(await (format === 'png' ? image.png() : image.jpeg()).toBuffer());
}

export async function personalizationJob(options: {
  eventsUrl: string;
  jobId?: string;
  steps?: number;
  image?: Uint8Array;
  contentType?: 'image/png' | 'image/jpeg' | 'image/webp';
  width?: number;
  height?: number;
}): Promise<JobRequestType> {
  const image = options.image ?? (await testPhoto());
  return JobRequest.parse({
    job_id: options.jobId ?? newJobId(),
    kind: 'personalization',
    attempt: 1,
    events_url: options.eventsUrl,
    lease_seconds: 600,
    payload: {
      method: 'hyperdreambooth',
      images: [
        {
          content_type: options.contentType ?? 'image/png',
          width: options.width ?? 96,
          height: options.height ?? 96,
          source: inlineSource(image),
        },
      ],
      finetune: { steps: options.steps ?? 5, rank: 4 },
      outputs: [
        { format: 'lidb', dtype: 'fp16' },
        { format: 'lidb', dtype: 'fp32' },
      ],
    },
  });
}

export function generationJob(options: {
  eventsUrl: string;
  weights: Uint8Array;
  jobId?: string;
  params?: Partial<GenerationParams>;
}): JobRequestType {
  return JobRequest.parse({
    job_id: options.jobId ?? newJobId(),
    kind: 'generation',
    attempt: 1,
    events_url: options.eventsUrl,
    lease_seconds: 600,
    payload: {
      weights: { format: 'lidb', dtype: 'fp32', source: inlineSource(options.weights) },
      base_model_id: 'test/onnx-step-model',
      params: { prompt: 'a photo of a [V] face', steps: 4, width: 64, height: 64, ...options.params },
    },
  });
}

/** Weights for the step executor: a [size, size] F32 `state`. */
export function stepWeights(size = 32): Uint8Array {
  const data = new Float32Array(size * size).map((_, i) => Math.cos(i) * 0.5);
  return serializeSafetensors({ state: { dtype: 'F32', shape: [size, size], data } });
}

/** The edge's side of `/v1/jobs`, signed with the contract's `signedFetch`. */
export function runnerClient(baseUrl: string, secret = TEST_SECRET) {
  return {
    post: (job: unknown) =>
      signedFetch(secret, `${baseUrl}${RUNNER_PATHS.jobs}`, { method: 'POST', body: typeof job === 'string' ? job : JSON.stringify(job) }),
    get: (jobId: string) => signedFetch(secret, `${baseUrl}${RUNNER_PATHS.job(jobId)}`, { method: 'GET' }),
    cancel: (jobId: string) => signedFetch(secret, `${baseUrl}${RUNNER_PATHS.job(jobId)}`, { method: 'DELETE' }),
  };
}

/** A response body for assertions (tests only: the shape is what the assertions check). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function readJson(response: Response): Promise<any> {
  return response.json();
}
