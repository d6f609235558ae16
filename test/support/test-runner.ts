// A stand-in for the GPU runner (which has its own issue) that honours contract/CONTRACT.md: it verifies signed
// job requests and cancellations, rejects replays, and prepares the signed events a real runner would send, with
// well-formed results. Workers under test have no listening port, so tests fetch these events from the control API
// and deliver them to the edge themselves.
//
// Paths: the contract's `/v1/jobs`, `/v1/jobs/:id` and `/v1/weights/check` (the runner's own check on the tiny
// structure, weights-double.ts); `/busy/v1/jobs` always answers 503 with Retry-After; `/reject/v1/jobs` answers 422;
// control: GET /control/jobs/:id, GET /control/jobs, GET /control/weights-file?variant=… (a file to import).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  JobRequest,
  ReplayGuard,
  bytesToBase64,
  sha256Hex,
  signMessage,
  verifyMessage,
  type RunnerEvent,
  WeightsCheckRequest,
  base64ToBytes,
} from '../../contract/index.ts';
import { checkWeights, WEIGHT_FILE_VARIANTS, weightFile, type WeightFileVariant } from './weights-double.ts';

export const TEST_RUNNER_SECRET = 'test-runner-secret-0123456789abcdefghij';
export const BUSY_RETRY_AFTER_SECONDS = 7;

export type SignedEvent = { headers: Record<string, string>; body: string; event: RunnerEvent };
export type ReceivedJob = { request: JobRequest; attempts: number[]; canceled: boolean; events: SignedEvent[] };

/** A minimal but valid .safetensors file: 8-byte little-endian header length, JSON header, tensor bytes. */
export function safetensorsBytes(metadata: Record<string, string>, values: Float32Array): Uint8Array {
  const header = JSON.stringify({
    __metadata__: metadata,
    weight: { dtype: 'F32', shape: [values.length], data_offsets: [0, values.byteLength] },
  });
  const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
  const out = new Uint8Array(8 + padded.length + values.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded.length), true);
  out.set(new TextEncoder().encode(padded), 8);
  out.set(new Uint8Array(values.buffer), 8 + padded.length);
  return out;
}

/** A valid 1×1-style PNG header with the requested size (IHDR only is enough for the edge, which never decodes). */
export function pngBytes(width: number, height: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(64);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(40, seed);
  return bytes;
}

async function eventsFor(job: JobRequest, secret: string): Promise<SignedEvent[]> {
  const totalSteps = job.kind === 'personalization' ? job.payload.finetune.steps || 1 : job.payload.params.steps;
  const base = { job_id: job.job_id, attempt: job.attempt, occurred_at: new Date().toISOString() };
  const id = (suffix: string) => `evt_${job.job_id}_${job.attempt}_${suffix}`;
  const events: RunnerEvent[] = [
    { ...base, event_id: id('started'), type: 'started' },
    { ...base, event_id: id('p1'), type: 'progress', step: 1, total_steps: totalSteps },
    { ...base, event_id: id('pn'), type: 'progress', step: totalSteps, total_steps: totalSteps },
  ];
  if (job.kind === 'personalization') {
    const files = [];
    for (const output of job.payload.outputs) {
      const bytes = safetensorsBytes({ format: output.format, dtype: output.dtype, method: job.payload.method }, new Float32Array([1, 2, 3, job.attempt]));
      files.push({ ...output, data_base64: bytesToBase64(bytes), sha256: await sha256Hex(bytes), byte_size: bytes.byteLength });
    }
    events.push({
      ...base,
      event_id: id('done'),
      type: 'succeeded',
      result: {
        kind: 'personalization',
        method: job.payload.method,
        base_model_id: 'sd15-tiny',
        // As the runner reports them: textual inversion learns embedding rows (rank 0) of the text encoder's token table.
        ...(job.payload.method === 'textual-inversion'
          ? { rank: 0, layers: ['text_encoder.text_model.embeddings.token_embedding'] }
          : { rank: job.payload.finetune.rank, layers: ['down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q'] }),
        num_parameters: 4,
        files,
      },
    });
  } else {
    const { params } = job.payload;
    const images = [];
    for (let index = 0; index < params.num_images; index++) {
      const bytes = pngBytes(params.width, params.height, params.seed + index);
      images.push({
        index,
        content_type: 'image/png' as const,
        width: params.width,
        height: params.height,
        seed: params.seed + index,
        data_base64: bytesToBase64(bytes),
        sha256: await sha256Hex(bytes),
        byte_size: bytes.byteLength,
      });
    }
    events.push({ ...base, event_id: id('done'), type: 'succeeded', result: { kind: 'generation', images } });
  }
  const path = new URL(job.events_url).pathname;
  const signed: SignedEvent[] = [];
  for (const event of events) {
    const body = JSON.stringify(event);
    signed.push({ event, body, headers: { 'content-type': 'application/json', ...(await signMessage(secret, { method: 'POST', path, body }, { id: event.event_id })) } });
  }
  return signed;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export type TestRunner = { url: string; jobs: Map<string, ReceivedJob>; close(): Promise<void> };

export async function startTestRunner(secret = TEST_RUNNER_SECRET): Promise<TestRunner> {
  const jobs = new Map<string, ReceivedJob>();
  const replays = new ReplayGuard();

  async function verified(req: IncomingMessage, path: string, body: string): Promise<string | null> {
    const headers = { get: (name: string) => (req.headers[name] as string | undefined) ?? null };
    const result = await verifyMessage([secret], headers, { method: req.method ?? '', path, body });
    if (!result.ok) return result.reason;
    if (!replays.accept(result.id)) return 'replayed';
    return null;
  }

  const server: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://runner');
      const body = await readBody(req);
      if (url.pathname === '/busy/v1/jobs') return send(res, 503, { error: 'queue full' }, { 'retry-after': String(BUSY_RETRY_AFTER_SECONDS) });
      if (url.pathname === '/reject/v1/jobs') return send(res, 422, { error: 'bad job' });
      if (req.method === 'GET' && url.pathname === '/control/jobs') return send(res, 200, [...jobs.keys()]);
      const control = /^\/control\/jobs\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'GET' && control) {
        const job = jobs.get(decodeURIComponent(control[1]!));
        return job ? send(res, 200, job) : send(res, 404, { error: 'unknown job' });
      }
      if (req.method === 'GET' && url.pathname === '/control/weights-file') {
        const variant = url.searchParams.get('variant') ?? 'valid';
        if (!(WEIGHT_FILE_VARIANTS as readonly string[]).includes(variant)) return send(res, 404, { error: `variants: ${WEIGHT_FILE_VARIANTS.join(', ')}` });
        const bytes = weightFile(variant as WeightFileVariant, Number(url.searchParams.get('seed') ?? 1));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) });
        return void res.end(bytes);
      }
      if (req.method === 'POST' && url.pathname === '/v1/weights/check') {
        const problem = await verified(req, url.pathname, body);
        if (problem) return send(res, 401, { error: { code: 'invalid_signature', message: problem } });
        const parsed = WeightsCheckRequest.safeParse(JSON.parse(body));
        if (!parsed.success) return send(res, 422, { error: { code: 'invalid_request', message: parsed.error.message } });
        const answer = checkWeights(base64ToBytes(parsed.data.data_base64));
        return send(res, answer.status, answer.body);
      }
      if (req.method === 'POST' && url.pathname === '/v1/jobs') {
        const problem = await verified(req, url.pathname, body);
        if (problem) return send(res, 401, { error: { code: 'invalid_signature', message: problem } });
        const parsed = JobRequest.safeParse(JSON.parse(body));
        if (!parsed.success) return send(res, 422, { error: { code: 'invalid_job', message: parsed.error.message } });
        const request = parsed.data;
        const known = jobs.get(request.job_id);
        // Duplicates are by (job id, attempt): a re-dispatch after a lost lease is a new attempt.
        if (known?.attempts.includes(request.attempt)) return send(res, 202, { job_id: request.job_id, status: 'duplicate' });
        const events = await eventsFor(request, secret);
        jobs.set(request.job_id, { request, attempts: [...(known?.attempts ?? []), request.attempt], canceled: false, events });
        return send(res, 202, { job_id: request.job_id, status: 'accepted' });
      }
      const cancel = /^\/v1\/jobs\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'DELETE' && cancel) {
        const problem = await verified(req, url.pathname, body);
        if (problem) return send(res, 401, { error: { code: 'invalid_signature', message: problem } });
        const job = jobs.get(decodeURIComponent(cancel[1]!));
        if (!job) return send(res, 404, { error: 'unknown job' });
        job.canceled = true;
        return send(res, 200, { job_id: job.request.job_id, status: 'canceled' });
      }
      send(res, 404, { error: 'no route' });
    } catch (error) {
      send(res, 500, { error: String(error) });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jobs,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
