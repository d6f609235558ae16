// End to end on the real models: the runner with the model pack executor (the bundled tiny SD 1.5-topology pack, its
// sessions in the engine's session worker) personalizes from a rendered face and generates with the weights it returned, through signed HTTP
// and a real local server standing in for the edge.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobRequest, type RunnerEvent } from '../../contract/index.ts';
import { parseSafetensors } from '../../gpu-runner/io/safetensors.ts';
import { importTextualInversion } from '../../gpu-runner/personalize/weights/textual-inversion-format.ts';
import { JOB_SESSION_KINDS } from '../../gpu-runner/models/session-kinds.ts';
import { ModelPackExecutor } from '../../gpu-runner/server/executors/model-pack-executor.ts';
import { DEFAULT_WORLD, sampleAt, toRgbBytes } from '../../gpu-runner/world/index.ts';
import { startFakeEdge, type FakeEdge } from './support/fake-edge.ts';
import { inlineSource, newJobId, readJson, TEST_SECRET } from './support/jobs.ts';
import { startTestRunner, type TestRunner } from './support/runner.ts';

const isFinal = (jobId: string) => (event: RunnerEvent) => event.job_id === jobId && (event.type === 'succeeded' || event.type === 'failed');
/** Few steps: the point is the path through the service, not the quality (bench:personalize measures that). */
const FINETUNE_STEPS = 3;
const SAMPLING_STEPS = 2;
const UPLOAD_SIDE = 96;

let edge: FakeEdge;
let runner: TestRunner;

beforeAll(async () => {
  edge = await startFakeEdge({ secret: TEST_SECRET });
  // The provider named explicitly, as production names `cuda`: every session kind must report it.
  const executor = new ModelPackExecutor({ threads: 1, executionProvider: 'cpu' });
  runner = await startTestRunner({ executor });
});

afterAll(async () => {
  await runner?.stop();
  await edge?.close();
});

async function facePng(): Promise<{ bytes: Uint8Array; width: number; height: number }> {
  const sample = sampleAt(DEFAULT_WORLD, 'train', 0);
  const { width, height } = sample.image;
  // The world renders small faces; an upload is at least 64 px a side (the edge's and the runner's lower bound).
  const png = await sharp(Buffer.from(toRgbBytes(sample.image)), { raw: { width, height, channels: 3 } })
    .resize(UPLOAD_SIDE, UPLOAD_SIDE, { kernel: 'lanczos3' })
    .png()
    .toBuffer();
  return { bytes: new Uint8Array(png), width: UPLOAD_SIDE, height: UPLOAD_SIDE };
}

/** A signed-job envelope around a payload, addressed to the stand-in edge. */
function jobOf(kind: 'personalization' | 'generation', payload: Record<string, unknown>) {
  return { job_id: newJobId(), kind, attempt: 1, events_url: edge.eventsUrl, lease_seconds: 600, payload };
}

function faceInput(face: { bytes: Uint8Array; width: number; height: number }) {
  return { content_type: 'image/png', width: face.width, height: face.height, source: inlineSource(face.bytes) };
}

/** Posts a job, waits for its final event and returns the result of the expected kind (throws on failure). */
async function runToSuccess<K extends 'personalization' | 'generation'>(job: JobRequest, kind: K) {
  expect((await runner.client.post(job)).status).toBe(202);
  const final = await edge.waitFor(isFinal(job.job_id), 120_000);
  if (final.type !== 'succeeded' || final.result.kind !== kind) throw new Error(`${kind} did not succeed: ${JSON.stringify(final)}`);
  return final.result as Extract<typeof final.result, { kind: K }>;
}

describe('model pack executor (tiny pack)', () => {
  it('personalizes from one face, then generates PNGs with the returned LiDB weights', async () => {
    const face = await facePng();
    const personalization = JobRequest.parse(jobOf('personalization', {
      method: 'hyperdreambooth',
      images: [faceInput(face)],
      finetune: { steps: FINETUNE_STEPS, rank: 2, relax: 'lidb', seed: 1 },
      outputs: [
        { format: 'lidb', dtype: 'fp16' },
        { format: 'lidb', dtype: 'fp32' },
        { format: 'kohya', dtype: 'fp16' },
        { format: 'peft', dtype: 'fp32' },
      ],
    }));
    const result = await runToSuccess(personalization, 'personalization');
    expect(result).toMatchObject({ method: 'hyperdreambooth', rank: 2 });
    expect(result.layers.length).toBeGreaterThan(0);
    expect(result.files.map((file) => `${file.format}/${file.dtype}`)).toEqual(['lidb/fp16', 'lidb/fp32', 'kohya/fp16', 'peft/fp32']);
    const kohya = parseSafetensors(new Uint8Array(Buffer.from(result.files[2]!.data_base64, 'base64')));
    expect([...kohya.tensors.keys()].some((name) => name.endsWith('.lora_down.weight'))).toBe(true);
    const view = await readJson(await runner.client.get(personalization.job_id));
    expect(view.progress).toEqual({ step: FINETUNE_STEPS, total_steps: FINETUNE_STEPS });

    const lidbFile = result.files[1]!;
    const generation = JobRequest.parse(jobOf('generation', {
      weights: { format: 'lidb', dtype: 'fp32', source: { data_base64: lidbFile.data_base64, sha256: lidbFile.sha256, byte_size: lidbFile.byte_size } },
      base_model_id: result.base_model_id,
      params: { prompt: 'a photo of a [V] face', num_images: 2, steps: SAMPLING_STEPS, width: 64, height: 64, seed: 5, scheduler: 'euler' },
    }));
    const generated = await runToSuccess(generation, 'generation');
    expect(generated.images.map((image) => image.seed)).toEqual([5, 6]);
    for (const image of generated.images) {
      const meta = await sharp(Buffer.from(image.data_base64, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 64, 64]);
    }

    // Every kind of session the two jobs opened ran on the configured provider, as /readyz and /metrics say.
    const ready = await readJson(await fetch(`${runner.url}/readyz`));
    expect(Object.keys(ready.session_providers).sort()).toEqual([...JOB_SESSION_KINDS].sort());
    // and in fp32: RUNNER_SAMPLING_PRECISION=auto keeps fp32 on the CPU, and every other graph is fp32
    for (const kind of JOB_SESSION_KINDS) expect(ready.session_providers[kind]).toEqual({ requested: 'cpu', execution_provider: 'cpu', precision: 'fp32' });
    const metrics = await (await fetch(`${runner.url}/metrics`)).text();
    for (const kind of JOB_SESSION_KINDS) expect(metrics).toContain(`runner_session_provider{kind="${kind}",provider="cpu"} 1`);
    for (const kind of JOB_SESSION_KINDS) expect(metrics).toContain(`runner_session_precision{kind="${kind}",precision="fp32"} 1`);
  });

  it('personalizes with textual inversion (native file and kohya/A1111 embedding), then generates with its token', async () => {
    const face = await facePng();
    const personalization = JobRequest.parse(jobOf('personalization', {
      method: 'textual-inversion',
      images: [faceInput(face)],
      finetune: { steps: FINETUNE_STEPS, seed: 2, learning_rate: 0.01, identifier_token: 'sks' },
      outputs: [
        { format: 'lidb', dtype: 'fp16' },
        { format: 'kohya', dtype: 'fp32' },
      ],
    }));
    const result = await runToSuccess(personalization, 'personalization');
    expect(result).toMatchObject({ method: 'textual-inversion', rank: 0, layers: ['text_encoder.text_model.embeddings.token_embedding'] });
    expect(result.files.map((file) => `${file.format}/${file.dtype}`)).toEqual(['lidb/fp16', 'kohya/fp32']);
    const bytesOf = (index: number) => new Uint8Array(Buffer.from(result.files[index]!.data_base64, 'base64'));
    const embedding = importTextualInversion(bytesOf(1));
    expect(embedding).toMatchObject({ token: 'sks', metadata: { base_model_id: result.base_model_id, method: 'textual-inversion' } });
    expect(result.num_parameters).toBe(embedding.vectors * embedding.hidden);
    const native = parseSafetensors(bytesOf(0));
    expect(native.header.metadata).toMatchObject({ method: 'textual-inversion', textual_inversion_token: 'sks', base_model_id: result.base_model_id });
    expect(native.tensors.get('textual_inversion.embedding')?.shape).toEqual([embedding.vectors, embedding.hidden]);

    const nativeFile = result.files[0]!;
    const generation = JobRequest.parse(jobOf('generation', {
      weights: { format: 'lidb', dtype: 'fp16', source: { data_base64: nativeFile.data_base64, sha256: nativeFile.sha256, byte_size: nativeFile.byte_size } },
      base_model_id: result.base_model_id,
      params: { prompt: 'a photo of sks in a hat', steps: SAMPLING_STEPS, width: 64, height: 64, seed: 9 },
    }));
    const generated = await runToSuccess(generation, 'generation');
    const meta = await sharp(Buffer.from(generated.images[0]!.data_base64, 'base64')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 64, 64]);
  });

  it('answers 422 to a textual-inversion job that asks for a PEFT file', async () => {
    const face = await facePng();
    const job = jobOf('personalization', {
      method: 'textual-inversion',
      images: [faceInput(face)],
      finetune: { steps: 1 },
      outputs: [{ format: 'peft', dtype: 'fp16' }],
    });
    const res = await runner.client.post(job);
    expect(res.status).toBe(422);
    expect(JSON.stringify(await readJson(res))).toContain('method textual-inversion has no peft file');
  });

  it('stops a finetune between steps when canceled', async () => {
    const face = await facePng();
    const job = JobRequest.parse(jobOf('personalization', {
      method: 'lidb-zero',
      images: [faceInput(face)],
      finetune: { steps: 2000 },
      outputs: [{ format: 'lidb', dtype: 'fp16' }],
    }));
    expect((await runner.client.post(job)).status).toBe(202);
    await edge.waitFor((event) => event.job_id === job.job_id && event.type === 'progress', 120_000);
    expect((await runner.client.cancel(job.job_id)).status).toBe(202);
    expect(await edge.waitFor(isFinal(job.job_id), 60_000)).toMatchObject({ type: 'failed', error: { code: 'canceled', retryable: false } });
    const view = await readJson(await runner.client.get(job.job_id));
    expect(view.status).toBe('canceled');
    expect(view.progress.step).toBeLessThan(2000);
  });

  it('refuses an unreadable weight file as invalid input', async () => {
    const job = JobRequest.parse(jobOf('generation', {
      weights: { format: 'lidb', dtype: 'fp32', source: inlineSource(new TextEncoder().encode('not weights at all')) },
      base_model_id: 'x',
      params: { prompt: 'a [V] face', steps: 1, width: 64, height: 64 },
    }));
    expect((await runner.client.post(job)).status).toBe(202);
    expect(await edge.waitFor(isFinal(job.job_id), 60_000)).toMatchObject({ type: 'failed', error: { code: 'invalid_input', retryable: false } });
  });
});
