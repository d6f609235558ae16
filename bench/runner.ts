// `npm run bench:runner`: what the runner service adds to a job beyond the model compute (HTTP, signature,
// queue, input decoding, result encoding, outbox write, signed event delivery), as a share of the
// job's total time, for a personalization and a generation on the runner's default model pack (the trained world pack
// when complete, else the tiny pack; the table names the pack loaded). Target: < 5 %.
//
// Total: from the edge's POST /v1/jobs to the edge receiving the `succeeded` event (a local stand-in edge that
// verifies signatures, as in the tests). Model compute: the time inside the executor's personalize/generate, for the
// same job (the runner reports it in GET /v1/jobs/:id `timings.model_ms`);
// comparing against separate direct runs would drown a few-percent difference in run-to-run noise on a shared CPU.
// Medians over --repeats runs, after one warm-up of each kind (sessions are built on first use).
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { JobRequest, type RunnerEvent } from '../contract/index.ts';
import { ModelPackExecutor } from '../gpu-runner/server/executors/model-pack-executor.ts';
import { DEFAULT_WORLD, sampleAt, toRgbBytes } from '../gpu-runner/world/index.ts';
import { startFakeEdge } from '../test/runner/support/fake-edge.ts';
import { inlineSource, newJobId, readJson, TEST_SECRET } from '../test/runner/support/jobs.ts';
import { startTestRunner } from '../test/runner/support/runner.ts';
import { printTable, writeResults, type Row } from './report.ts';
import { applyRunnerRuntimeDefaults } from '../gpu-runner/server/config.ts';
import { defaultModelDir } from '../gpu-runner/pack/default-pack.ts';
import { packIndex, packLabel } from '../gpu-runner/pack/pack-index.ts';

/** The target for the service's share of a job's time. */
const OVERHEAD_TARGET = 0.05;
/** docs/method.md and docs/targets.md: 40 finetune steps; a 64 px image in 25 denoising steps. */
const FINETUNE_STEPS = 40;
const SAMPLING_STEPS = 25;
const IMAGE_SIDE = 64;
const UPLOAD_SIDE = 256;

const { values } = parseArgs({ options: { repeats: { type: 'string', default: '5' }, threads: { type: 'string', default: '0' } } });
/** onnxruntime intra-op threads of the model sessions; 0 keeps its default (all cores). */
const THREADS = Number(values.threads);
// The same onnxruntime settings as a production runner (gpu-runner/main.ts).
applyRunnerRuntimeDefaults();
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${values.repeats}`);

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round = (ms: number) => Math.round(ms * 10) / 10;

const sample = sampleAt(DEFAULT_WORLD, 'train', 0);
const face = new Uint8Array(
  await sharp(Buffer.from(toRgbBytes(sample.image)), { raw: { width: sample.image.width, height: sample.image.height, channels: 3 } })
    .resize(UPLOAD_SIDE, UPLOAD_SIDE, { kernel: 'lanczos3' })
    .png()
    .toBuffer(),
);

const edge = await startFakeEdge({ secret: TEST_SECRET });
// Resolved once, as gpu-runner/main.ts does, so the table names the pack the executor loads.
const modelDir = defaultModelDir();
const nativeSide = packIndex(modelDir).nativeResolution;
const executor = new ModelPackExecutor({ modelDir, ...(THREADS ? { threads: THREADS } : {}) });
const runner = await startTestRunner({
  executor,
  // The real default (one progress event a second), so event traffic is what production sends.
  env: { RUNNER_PROGRESS_INTERVAL_MS: '1000', RUNNER_LOG_LEVEL: 'silent' },
});

const personalizationJob = () =>
  JobRequest.parse({
    job_id: newJobId(),
    kind: 'personalization',
    attempt: 1,
    events_url: edge.eventsUrl,
    lease_seconds: 600,
    payload: {
      method: 'hyperdreambooth',
      images: [{ content_type: 'image/png', width: UPLOAD_SIDE, height: UPLOAD_SIDE, source: inlineSource(face) }],
      finetune: { steps: FINETUNE_STEPS, seed: 0 },
      outputs: [
        { format: 'lidb', dtype: 'fp16' },
        { format: 'lidb', dtype: 'fp32' },
        { format: 'kohya', dtype: 'fp16' },
      ],
    },
  });

const generationJob = (weights: { data_base64: string; sha256: string; byte_size: number }, baseModelId: string) =>
  JobRequest.parse({
    job_id: newJobId(),
    kind: 'generation',
    attempt: 1,
    events_url: edge.eventsUrl,
    lease_seconds: 600,
    payload: {
      weights: { format: 'lidb', dtype: 'fp32', source: weights },
      base_model_id: baseModelId,
      params: { prompt: 'a photo of a [V] face', steps: SAMPLING_STEPS, width: IMAGE_SIDE, height: IMAGE_SIDE, seed: 0, scheduler: 'ddim' },
    },
  });

type Timings = { input_ms?: number; compute_ms?: number; model_ms?: number; result_ms?: number };
type Measured = { totalMs: number; timings: Timings; event: RunnerEvent; startMs: number; deliverMs: number };

async function throughService(job: JobRequest): Promise<Measured> {
  const postedAt = Date.now();
  const started = performance.now();
  const response = await runner.client.post(job);
  if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}: ${await response.text()}`);
  const event = await edge.waitFor((e) => e.job_id === job.job_id && (e.type === 'succeeded' || e.type === 'failed'), 600_000);
  const totalMs = performance.now() - started;
  const receivedAt = Date.now();
  if (event.type !== 'succeeded') throw new Error(`job failed: ${JSON.stringify(event)}`);
  const view = await readJson(await runner.client.get(job.job_id));
  return {
    totalMs,
    timings: view.timings,
    event,
    // Wall-clock stamps (ms resolution): POST → execution starts; final event stamped → received by the edge.
    startMs: Date.parse(view.started_at) - postedAt,
    deliverMs: receivedAt - Date.parse(event.occurred_at),
  };
}

const rows: Row[] = [];
const results: Record<string, unknown> = {};
let weights: { data_base64: string; sha256: string; byte_size: number } | undefined;
let baseModelId = '';

for (const kind of ['personalization', 'generation'] as const) {
  const makeJob = () => {
    if (kind === 'personalization') return personalizationJob();
    if (!weights) throw new Error('no weights from the personalization runs');
    return generationJob(weights, baseModelId);
  };
  // Warm-up: sessions are built on first use.
  const warm = await throughService(makeJob());
  if (warm.event.type === 'succeeded' && warm.event.result.kind === 'personalization') {
    const file = warm.event.result.files.find((f) => f.format === 'lidb' && f.dtype === 'fp32')!;
    weights = { data_base64: file.data_base64, sha256: file.sha256, byte_size: file.byte_size };
    baseModelId = warm.event.result.base_model_id;
  }

  const runs: Array<{ total: number; model: number; accept: number; input: number; hop: number; result: number; deliver: number }> = [];
  for (let i = 0; i < repeats; i++) {
    const { totalMs, timings, startMs, deliverMs } = await throughService(makeJob());
    if (timings.model_ms === undefined || timings.compute_ms === undefined) throw new Error('the runner reported no model timing');
    runs.push({
      total: totalMs,
      model: timings.model_ms,
      input: timings.input_ms ?? 0,
      hop: timings.compute_ms - timings.model_ms,
      result: timings.result_ms ?? 0,
      accept: startMs,
      deliver: deliverMs,
    });
  }
  // The share per run, then its median: each run's overhead is measured against its own compute.
  const shares = runs.map((run) => (run.total - run.model) / run.total);
  const share = median(shares);
  const total = median(runs.map((run) => run.total));
  const compute = median(runs.map((run) => run.model));
  const overhead = median(runs.map((run) => run.total - run.model));
  const row = {
    job: kind,
    work:
      kind === 'personalization'
        ? `hyperdreambooth, ${FINETUNE_STEPS} steps, 3 files`
        : `1 image ${IMAGE_SIDE} px${nativeSide && nativeSide < IMAGE_SIDE ? ` (drawn at ${nativeSide} px, enlarged)` : ''}, ${SAMPLING_STEPS} steps`,
    total_ms: round(total),
    model_compute_ms: round(compute),
    overhead_ms: round(overhead),
    overhead_share_pct: Math.round(share * 1000) / 10,
    target_pct: OVERHEAD_TARGET * 100,
    meets_target: share < OVERHEAD_TARGET,
    accept_ms: round(median(runs.map((run) => run.accept))),
    input_decode_ms: round(median(runs.map((run) => run.input))),
    thread_hop_ms: round(median(runs.map((run) => run.hop))),
    result_encode_ms: round(median(runs.map((run) => run.result))),
    deliver_ms: round(median(runs.map((run) => run.deliver))),
  };
  rows.push(row);
  results[kind] = { ...row, repeats, runs: runs.map((run) => Object.fromEntries(Object.entries(run).map(([k, v]) => [`${k}_ms`, round(v)]))) };
}

printTable(`Runner overhead beyond model compute (${executor.description}; medians)`, rows);
console.log(
  '\ntotal: POST /v1/jobs → `succeeded` event at the edge stand-in; model_compute: inside the executor, in its worker\n' +
    'thread; overhead = total − model_compute (HTTP, signatures, queue, decoding, thread hop, encoding, outbox, events).',
);
// The machine is shared: the load during the run says how much scheduling delay the milliseconds above contain.
const load = loadavg().map((value) => Math.round(value * 100) / 100);
console.log(`load average (1, 5, 15 min) at the end: ${load.join(', ')} on ${cpus().length} CPUs`);
const path = writeResults('runner', {
  ...results,
  model_pack: executor.description,
  model_dir: packLabel(modelDir),
  threads: THREADS || 'onnxruntime default',
  load_average: load,
});
console.log(`\nwritten to ${path}`);

await runner.stop();
await edge.close();
