// `npm run bench:edge`: the edge's throughput and latency under `wrangler dev` on loopback, against a Hono hello-world
// under the same `wrangler dev` in the same run. Closed loop at 50 and 200 connections (autocannon): the hello world,
// the edge's /healthz, two authenticated GETs, an upload of a PHOTO_BYTES photo and a generation request. Open loop
// (bench/paced-load.ts, evenly spaced requests): the GETs at OPEN_LOOP_RATE and, with the hello world, at half the hello world's best rate.
// The data is real: a tenant, a face, one personalization run by the runner on its default model pack (named in the
// log). Bounded: each measurement stops at its request cap or DURATION_S, whichever comes first. BENCH_EDGE_PROFILE=1
// adds a CPU profile of the edge's workerd per GET route (bench/edge-profile.ts).
// Targets (docs/targets.md): every API route >= 50% of the hello world's req/s at 50 and
// 200 connections without errors; open loop p99 <= 25 ms at 100 req/s for the GETs, and at half the hello world's best
// rate <= 3x the hello world's p99 at that rate.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { mintTenantKeys, seedKeysOnce } from '../scripts/local-stack/keys.ts';
import { startChild, waitUntilReady } from '../scripts/local-stack/processes.ts';
import { REPO_ROOT, startStack } from '../scripts/local-stack/stack.ts';
import { startLocalPostgres } from '../scripts/local-stack/postgres.ts';
import { packLabel } from '../gpu-runner/pack/pack-index.ts';
import { freePort } from '../scripts/local-stack/ports.ts';
import { Api } from '../test/e2e/support/api.ts';
import { facePng } from '../test/e2e/support/face.ts';
import { cpuByProcessName, cpuPerRequest, profileDuring } from './edge-profile.ts';
import { type LoadResult, pacedLoad } from './paced-load.ts';
import { printTable, type Row, writeResults } from './report.ts';

/** The two loads; BENCH_EDGE_CONNECTIONS=1,50,200 adds an unloaded per-request latency. */
const CONNECTIONS = (process.env.BENCH_EDGE_CONNECTIONS ?? '50,200').split(',').map(Number);
const DURATION_S = Number(process.env.BENCH_EDGE_DURATION_S ?? 10);
const MAX_REQUESTS = Number(process.env.BENCH_EDGE_MAX_REQUESTS ?? 20_000);
/** Each upload stores a photo in local R2 and a subject: enough for a rate, not a disk's worth. */
const MAX_WRITES = 5_000;
const WARMUP_S = 2;
/** The targets (docs/targets.md): throughput ratio, open-loop p99 at a fixed rate, p99 ratio at half the ceiling. */
const TARGET_THROUGHPUT_RATIO = 0.5;
const OPEN_LOOP_RATE = 100;
const TARGET_OPEN_LOOP_P99_MS = 25;
const TARGET_P99_RATIO_AT_HALF = 3;
/** The share of the asked rate a route must serve for its open-loop p99 to count. */
const OPEN_LOOP_SUSTAINED = 0.95;
/**
 * Open loop: requests evenly spaced at the rate (bench/paced-load.ts; autocannon's overallRate sends each connection's
 * share of a second in one burst). The sockets only bound how many may wait at once; a request due while all are busy
 * waits, and the wait counts in its latency.
 */
const OPEN_LOOP_CONNECTIONS = Number(process.env.BENCH_EDGE_OPEN_LOOP_CONNECTIONS ?? 100);
/** The upload the issue names: an authenticated POST /v1/subjects with a 300 kB photo. */
const PHOTO_BYTES = 300_000;
const PROFILE = process.env.BENCH_EDGE_PROFILE === '1';
const PROFILE_REQUESTS = 3_000;
const READY_TIMEOUT_MS = 180_000;
/** No line per request from wrangler: logging would be measured too (and differently for the two Workers). */
const QUIET_WRANGLER = ['--log-level=warn'];
/**
 * The edge limits each API key to 600 requests a minute (wrangler.toml [[ratelimits]]); the load comes from many keys
 * of one tenant, rotated per request, as many clients of a tenant would, so the limiter is exercised but never trips
 * below KEY_POOL × 10 requests/s. Each key is used once before measuring: a key's first use writes its last_used_at.
 */
/**
 * The Worker opens a database connection per request. As in production (Hyperdrive), the local stack's PgBouncer
 * answers it and lends a warm server connection; BENCH_EDGE_POOL=0 (or no PgBouncer installed) connects the Worker
 * straight to PostgreSQL instead, one backend per request, and then 200 connections of load need more than
 * PostgreSQL's default 100 connections.
 */
const DATABASE_POOL = process.env.BENCH_EDGE_POOL !== '0';
const POSTGRES_MAX_CONNECTIONS = 800;
const KEY_POOL = Number(process.env.BENCH_EDGE_KEYS ?? 200);
/**
 * BENCH_EDGE_ROUTES=subjects,generations: only the API routes whose name contains one of these words (the hello world
 * always runs: every ratio is taken against it in the same run). Unset: every route.
 */
const ROUTE_FILTER = (process.env.BENCH_EDGE_ROUTES ?? '').split(',').map((word) => word.trim()).filter(Boolean);
const selected = (target: Target) => target.ceiling || ROUTE_FILTER.length === 0 || ROUTE_FILTER.some((word) => target.name.includes(word));

type Target = {
  name: string;
  url: string;
  /** Tenant keys, one per request in turn (see KEY_POOL). */
  keys?: readonly string[];
  method?: 'GET' | 'POST';
  body?: Buffer;
  headers?: Record<string, string>;
  /** The hello world: the ceiling every ratio is taken against. */
  ceiling?: boolean;
  /** A GET of the API: held to the open-loop targets. */
  openLoop?: boolean;
  /** Each request queues a job for the runner. */
  queuesJobs?: boolean;
};

/** How a measurement drives the target: a closed loop of `connections`, or `rate` requests a second (open loop). */
type Load = { connections: number; durationS: number; maxRequests: number; rate?: number };

async function measure(target: Target, load: Load): Promise<LoadResult> {
  let next = 0;
  const keys = target.keys;
  const headers = { ...target.headers };
  if (load.rate) {
    return pacedLoad({
      url: target.url,
      rate: load.rate,
      durationS: load.durationS,
      maxSockets: load.connections,
      timeoutMs: 10_000,
      ...(target.method ? { method: target.method } : {}),
      ...(target.body ? { body: target.body } : {}),
      headers: (i) => (keys ? { ...headers, authorization: `Bearer ${keys[i % keys.length]}` } : headers),
    });
  }
  return autocannon({
    url: target.url,
    connections: load.connections,
    duration: load.durationS,
    maxOverallRequests: Math.max(load.maxRequests, load.connections),
    timeout: 10,
    ...(target.method ? { method: target.method } : {}),
    ...(target.body ? { body: target.body } : {}),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    ...(keys
      ? {
          requests: [
            {
              setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${keys[next++ % keys.length]}` } }),
            },
          ],
        }
      : {}),
  });
}

function row(target: Target, load: Load, result: LoadResult): Row {
  return {
    target: target.name,
    connections: load.connections,
    'rate req/s': load.rate ?? null,
    requests: result.requests.total,
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p90 ms': result.latency.p90,
    'p99 ms': result.latency.p99,
    'max ms': result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    statuses: [
      ...Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => `${status}:${count}`),
      ...Object.entries(result.errorCodes ?? {}).map(([code, count]) => `${code}:${count}`),
    ].join(' '),
  };
}

/** A noise photo of about PHOTO_BYTES as PNG (random pixels do not compress), so every upload carries that much. */
async function photoOfSize(bytes: number): Promise<Buffer> {
  const side = Math.ceil(Math.sqrt(bytes / 3));
  const pixels = Buffer.alloc(side * side * 3);
  let state = 0x9e3779b9;
  for (let i = 0; i < pixels.length; i++) {
    // xorshift32, seeded: the same photo every run.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    pixels[i] = state & 0xff;
  }
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
}

/** One multipart upload, built once: autocannon sends the same bytes (and boundary) with every request. */
async function multipartUpload(photo: Buffer): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  form.append('name', 'bench subject');
  form.append('images', new Blob([photo], { type: 'image/png' }), 'face.png');
  const request = new Request('http://localhost/', { method: 'POST', body: form });
  return { body: Buffer.from(await request.arrayBuffer()), contentType: request.headers.get('content-type')! };
}

type Check = { target: string; met: boolean; measured: string };

/** The ratio table and each target's verdict, from the rows of one run. */
function verdicts(rows: readonly Row[], ceiling: string, halfHello: number, api: readonly Target[]): { ratios: Row[]; checks: Check[] } {
  const find = (name: string, connections: number, rate?: number) =>
    rows.find((r) => r.target === name && r.connections === connections && (r['rate req/s'] ?? undefined) === rate);
  const clean = (r: Row | undefined) => r !== undefined && r.errors === 0 && r.non2xx === 0;
  // An open-loop p99 counts only where the route kept up with the rate: a route that cannot is not at that rate.
  const sustained = (r: Row) => Number(r['req/s']) >= OPEN_LOOP_SUSTAINED * Number(r['rate req/s']);
  const helloHalf = find(ceiling, OPEN_LOOP_CONNECTIONS, halfHello);
  const ratios: Row[] = [];
  const checks: Check[] = [];
  for (const target of [{ name: ceiling } as Target, ...api]) {
    const cells: Record<string, string | number | null> = { route: target.name };
    for (const connections of CONNECTIONS) {
      const own = find(target.name, connections);
      const base = find(ceiling, connections);
      const ratio = own && base ? Number(own['req/s']) / Number(base['req/s']) : null;
      cells[`req/s @${connections}`] = own ? Number(own['req/s']) : null;
      cells[`ratio @${connections}`] = ratio === null ? null : `${Math.round(ratio * 100)}%`;
      cells[`errors @${connections}`] = own ? Number(own.errors) + Number(own.non2xx) : null;
      if (target.keys && ratio !== null && (connections === 50 || connections === 200)) {
        checks.push({
          target: `${target.name} >= ${TARGET_THROUGHPUT_RATIO * 100}% of the hello world at ${connections} connections, no errors`,
          met: ratio >= TARGET_THROUGHPUT_RATIO && clean(own),
          measured: `${own!['req/s']} / ${base!['req/s']} req/s = ${Math.round(ratio * 100)}%, ${Number(own!.errors) + Number(own!.non2xx)} errors or non-2xx`,
        });
      }
    }
    const at100 = find(target.name, OPEN_LOOP_CONNECTIONS, OPEN_LOOP_RATE);
    const atHalf = find(target.name, OPEN_LOOP_CONNECTIONS, halfHello);
    cells[`p99 ms @${OPEN_LOOP_RATE}/s`] = at100 ? Number(at100['p99 ms']) : null;
    cells[`p99 ms @${halfHello}/s`] = atHalf ? Number(atHalf['p99 ms']) : null;
    cells['p99 / hello p99'] = atHalf && helloHalf ? Number((Number(atHalf['p99 ms']) / Number(helloHalf['p99 ms'])).toFixed(2)) : null;
    ratios.push(cells);
    if (target.openLoop && at100) {
      checks.push({
        target: `${target.name} p99 <= ${TARGET_OPEN_LOOP_P99_MS} ms at ${OPEN_LOOP_RATE} req/s`,
        met: Number(at100['p99 ms']) <= TARGET_OPEN_LOOP_P99_MS && clean(at100) && sustained(at100),
        measured: `p99 ${at100['p99 ms']} ms at ${at100['req/s']} req/s`,
      });
    }
    if (target.openLoop && atHalf && helloHalf) {
      checks.push({
        target: `${target.name} p99 <= ${TARGET_P99_RATIO_AT_HALF}x the hello world's at ${halfHello} req/s`,
        met: Number(atHalf['p99 ms']) <= TARGET_P99_RATIO_AT_HALF * Number(helloHalf['p99 ms']) && clean(atHalf) && sustained(atHalf),
        measured: `p99 ${atHalf['p99 ms']} ms vs ${helloHalf['p99 ms']} ms at ${atHalf['req/s']} / ${helloHalf['req/s']} req/s`,
      });
    }
  }
  return { ratios, checks };
}

/** How many functions the profile summary names beside the categories. */
const PROFILE_TOP_FUNCTIONS = 30;
const PROFILE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Microseconds of workerd CPU per request, by category and for the costliest functions; the raw profile is kept. */
function summarizeProfile(target: string, taken: Awaited<ReturnType<typeof profileDuring>>) {
  const file = join(PROFILE_DIR, `edge-${target.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}.cpuprofile`);
  mkdirSync(PROFILE_DIR, { recursive: true });
  writeFileSync(file, JSON.stringify(taken.profile));
  const perRequest = (us: number) => Math.round(us / Math.max(1, taken.requests));
  const sorted = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  const busy = sorted(taken.byCategory).filter(([name]) => name !== 'runtime (idle)');
  const total = busy.reduce((sum, [, us]) => sum + us, 0);
  const rows: Row[] = [
    ...busy.map(([name, us]) => ({ where: name, 'us/request': perRequest(us), share: `${Math.round((100 * us) / total)}%` })),
    { where: 'total (idle excluded)', 'us/request': perRequest(total), share: '100%' },
    ...sorted(taken.byFunction)
      .filter(([name]) => !name.startsWith('(idle)'))
      .slice(0, PROFILE_TOP_FUNCTIONS)
      .map(([name, us]) => ({ where: `  fn ${name}`, 'us/request': perRequest(us), share: `${Math.round((100 * us) / total)}%` })),
  ];
  return { target, requests: taken.requests, file, rows };
}

const log = (line: string) => console.log(`[bench:edge] ${line}`);
const dataDir = await mkdtemp(join(tmpdir(), 'hdb-bench-edge-'));
// mkdtemp makes a 0700 folder; as root the server runs as the `postgres` user, which must traverse it.
await chmod(dataDir, 0o755);
// An embedded server of our own, with room for one connection per in-flight request (see POSTGRES_MAX_CONNECTIONS).
process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));
const postgres = await startLocalPostgres(join(dataDir, 'postgres-root'), log, { maxConnections: POSTGRES_MAX_CONNECTIONS });
const output: string[] = [];
const keep = (name: string, line: string) => {
  output.push(`[${name}] ${line}`);
  if (output.length > 200) output.shift();
};
const edgeInspectorPort = await freePort();
const profiles: ReturnType<typeof summarizeProfile>[] = [];
const stack = await startStack({
  dataDir,
  databaseUrl: postgres.url,
  edgePort: await freePort(),
  runnerPort: await freePort(),
  edgeArgs: [...QUIET_WRANGLER, '--inspector-port', String(edgeInspectorPort)],
  databasePool: DATABASE_POOL,
  log,
  onOutput: keep,
}).catch(async (error: unknown) => {
  await postgres.stop();
  throw new Error(`${(error as Error).message}\n${output.slice(-40).join('\n')}`);
});
const helloPort = await freePort();
const helloInspectorPort = await freePort();
const helloWorker = startChild(
  'hello',
  process.execPath,
  [
    join(REPO_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
    'dev',
    '--config', join(REPO_ROOT, 'bench', 'hello-worker', 'wrangler.toml'),
    '--ip', '127.0.0.1',
    '--port', String(helloPort),
    '--persist-to', join(dataDir, 'hello'),
    '--show-interactive-dev-session=false',
    '--inspector-port', String(helloInspectorPort),
    ...QUIET_WRANGLER,
  ],
  { ...process.env, WRANGLER_SEND_METRICS: 'false' },
  REPO_ROOT,
  keep,
);

try {
  await waitUntilReady(`http://127.0.0.1:${helloPort}/`, helloWorker, READY_TIMEOUT_MS);
  const keys = await seedKeysOnce(stack.databaseUrl);
  if (!keys) throw new Error('the fresh bench database already had keys');
  const tenant = new Api(stack.edgeUrl, keys.tenantKey);
  const subject = await tenant.uploadSubject(await facePng(0));
  const created = await tenant.expectJson<{ id: string }>('POST', '/v1/personalizations', 202, {
    json: { subject_id: subject.id, finetune: { steps: 2 } },
    idempotent: true,
  });
  log(`personalizing a face on model pack ${packLabel(stack.modelDir)} (${created.id})…`);
  const job = await tenant.waitFor(`/v1/personalizations/${created.id}`, undefined, 180_000);
  if (job.status !== 'succeeded') throw new Error(`the bench personalization ${job.status}: ${JSON.stringify(job.error)}`);

  const weightsId = (job as { weights_id?: string }).weights_id;
  if (!weightsId) throw new Error('the bench personalization left no weights');

  const pool = await mintTenantKeys(stack.databaseUrl, keys.tenantId, KEY_POOL);
  for (const key of pool) await new Api(stack.edgeUrl, key).expectJson('GET', '/v1/weights?limit=1', 200);
  const upload = await multipartUpload(await photoOfSize(PHOTO_BYTES));
  log(`upload body: ${upload.body.length} bytes (a ${PHOTO_BYTES / 1000} kB PNG)`);
  const hello: Target = { name: 'hello-world (ceiling)', url: `http://127.0.0.1:${helloPort}/`, ceiling: true };
  const reads: Target[] = ([
    // The edge app without the database: what routing and middleware cost above the ceiling.
    { name: 'GET /healthz (edge, no DB)', url: `${stack.edgeUrl}/healthz` },
    { name: 'GET /v1/personalizations/:id', url: `${stack.edgeUrl}/v1/personalizations/${created.id}`, keys: pool, openLoop: true },
    { name: 'GET /v1/weights', url: `${stack.edgeUrl}/v1/weights`, keys: pool, openLoop: true },
  ] satisfies Target[]).filter(selected);
  const writes: Target[] = ([
    { name: `POST /v1/subjects (${PHOTO_BYTES / 1000} kB photo)`, url: `${stack.edgeUrl}/v1/subjects`, keys: pool, method: 'POST', body: upload.body, headers: { 'content-type': upload.contentType } },
    {
      name: 'POST /v1/generations',
      url: `${stack.edgeUrl}/v1/generations`,
      keys: pool,
      method: 'POST',
      body: Buffer.from(JSON.stringify({ weights_id: weightsId, prompt: 'a photo of a [V] face', steps: 2, width: 64, height: 64 })),
      headers: { 'content-type': 'application/json' },
      queuesJobs: true,
    },
  ] satisfies Target[]).filter(selected);
  if (reads.length + writes.length === 0) throw new Error(`BENCH_EDGE_ROUTES=${ROUTE_FILTER.join(',')} names no route`);
  const closed = (connections: number): Load => ({ connections, durationS: DURATION_S, maxRequests: MAX_REQUESTS });
  const rows: Row[] = [];
  const run = async (target: Target, load: Load) => {
    log(`${target.name}: ${load.rate ? `${load.rate} req/s on ${load.connections} connections` : `${load.connections} connections`}, up to ${load.durationS} s or ${load.maxRequests} requests`);
    const before = cpuByProcessName();
    const selfBefore = process.cpuUsage();
    const result = await measure(target, load);
    const self = process.cpuUsage(selfBefore);
    const cpu = cpuPerRequest(before, cpuByProcessName(), result.requests.total);
    // This process is autocannon; the other node processes are wrangler's and the runner's.
    const autocannonMs = (self.user + self.system) / 1000 / Math.max(1, result.requests.total);
    if (cpu.node !== undefined) cpu.node = Number(Math.max(0, cpu.node - autocannonMs).toFixed(2));
    cpu.autocannon = Number(autocannonMs.toFixed(2));
    const measured = {
      ...row(target, load, result),
      'CPU ms/request': Object.entries(cpu)
        .sort((a, b) => b[1] - a[1])
        .map(([name, ms]) => `${name} ${ms}`)
        .join(', '),
    };
    rows.push(measured);
    return measured;
  };
  const warm = (target: Target) => measure(target, { connections: 10, durationS: WARMUP_S, maxRequests: MAX_REQUESTS });

  // Closed loop: the ceiling first, the reads, then the writes (the generations last: they fill the job queue).
  for (const target of [hello, ...reads]) {
    log(`${target.name}: warm-up`);
    await warm(target);
    for (const connections of CONNECTIONS) await run(target, closed(connections));
  }

  // Open loop: the ceiling and the GET routes at OPEN_LOOP_RATE (the ceiling's p99 there says what the machine's
  // bursts cost anyway), then at half the ceiling's best rate.
  const helloMax = Math.max(...rows.filter((r) => r.target === hello.name).map((r) => Number(r['req/s'])));
  const halfHello = Math.round(helloMax / 2);
  const openLoop = (rate: number): Load => ({ connections: OPEN_LOOP_CONNECTIONS, durationS: DURATION_S, maxRequests: rate * DURATION_S, rate });
  // The hello world's open-loop rows are only the baseline of the GETs'.
  const openLoopTargets = reads.some((t) => t.openLoop) ? [hello, ...reads.filter((t) => t.openLoop)] : [];
  for (const target of openLoopTargets) await run(target, openLoop(OPEN_LOOP_RATE));
  for (const target of openLoopTargets) await run(target, openLoop(halfHello));

  if (PROFILE) {
    // Profiling slows the Worker: after the measurements, on their own load, and reported per request.
    // The hello world too: what workerd itself costs per request, the floor under every route.
    for (const target of openLoopTargets) {
      log(`${target.name}: CPU profile over ${PROFILE_REQUESTS} requests on 50 connections`);
      const taken = await profileDuring(target.ceiling ? helloInspectorPort : edgeInspectorPort, async () => {
        const result = await measure(target, { connections: 50, durationS: 60, maxRequests: PROFILE_REQUESTS });
        return result.requests.total;
      });
      profiles.push(summarizeProfile(target.name, taken));
    }
  }

  for (const target of writes) {
    if (target.queuesJobs) {
      // Every accepted generation is a job the runner would run: stop it, so that its work is not measured. The
      // jobs queue's dispatches then fail and retry, which the edge does while it serves (measured with it).
      await stack.killRunner();
    }
    log(`${target.name}: warm-up`);
    await warm(target);
    for (const connections of CONNECTIONS) await run(target, { ...closed(connections), maxRequests: Math.min(MAX_REQUESTS, MAX_WRITES) });
  }

  printTable('Edge under wrangler dev on loopback (closed loop: connections; open loop: rate req/s)', rows);
  const { ratios, checks } = verdicts(rows, hello.name, halfHello, [...reads, ...writes]);
  printTable(`Against the hello world in the same run (its best: ${helloMax} req/s; half: ${halfHello} req/s)`, ratios);
  for (const profile of profiles) printTable(`Where a request's workerd CPU goes: ${profile.target} (${profile.requests} requests profiled)`, profile.rows);
  for (const check of checks) console.log(`${check.met ? 'met    ' : 'NOT met'}  ${check.target}: ${check.measured}`);
  const path = writeResults('edge', {
    durationSeconds: DURATION_S,
    maxRequests: MAX_REQUESTS,
    apiKeys: KEY_POOL,
    databasePool: DATABASE_POOL,
    openLoop: { connections: OPEN_LOOP_CONNECTIONS, rate: OPEN_LOOP_RATE, halfHello },
    photoBytes: PHOTO_BYTES,
    note: `autocannon and workerd share the same CPUs; wrangler dev (local mode), not the Workers runtime in production; the Worker reaches PostgreSQL ${DATABASE_POOL ? "through the local stack's PgBouncer where installed (standing in for Hyperdrive)" : 'directly, one backend per request'}; closed loop: autocannon; open loop: evenly spaced requests (bench/paced-load.ts), latency from each request's due time, at most ${OPEN_LOOP_CONNECTIONS} sockets`,
    checks,
    ratios,
    rows,
    profiles,
  });
  console.log(`results: ${path}`);
} catch (error) {
  console.error(`[bench:edge] ${(error as Error).message}\n${output.slice(-40).join('\n')}`);
  process.exitCode = 1;
} finally {
  await helloWorker.stop();
  await stack.stop();
  await postgres.stop();
  await rm(dataDir, { recursive: true, force: true });
}
