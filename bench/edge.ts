// `npm run bench:edge`: the edge's latency and throughput under `wrangler dev` on loopback. Authenticated
// GET of a job and a weights listing at 50 and 200 connections (autocannon), with a Hono hello-world under the same
// `wrangler dev` as the ceiling, in the same run. The data is real: a tenant, a face, one personalization run by the
// runner on its default model pack (named in the log). Bounded: each measurement stops at MAX_REQUESTS or DURATION_S,
// whichever comes first.
// Target (docs/targets.md): p99 <= 25 ms at 200 connections, no errors.
import { rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { mintTenantKeys, seedKeysOnce } from '../scripts/local-stack/keys.ts';
import { startChild, waitUntilReady } from '../scripts/local-stack/processes.ts';
import { REPO_ROOT, startStack } from '../scripts/local-stack/stack.ts';
import { startLocalPostgres } from '../scripts/local-stack/postgres.ts';
import { packLabel } from '../gpu-runner/pack/pack-index.ts';
import { freePort } from '../test/support/postgres.ts';
import { Api } from '../test/e2e/support/api.ts';
import { facePng } from '../test/e2e/support/face.ts';
import { printTable, type Row, writeResults } from './report.ts';

/** The two loads; BENCH_EDGE_CONNECTIONS=1,50,200 adds an unloaded per-request latency. */
const CONNECTIONS = (process.env.BENCH_EDGE_CONNECTIONS ?? '50,200').split(',').map(Number);
const DURATION_S = Number(process.env.BENCH_EDGE_DURATION_S ?? 10);
const MAX_REQUESTS = Number(process.env.BENCH_EDGE_MAX_REQUESTS ?? 20_000);
const WARMUP_S = 2;
const TARGET_P99_MS = 25;
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

type Target = { name: string; url: string; keys?: readonly string[] };

async function measure(target: Target, connections: number, durationS: number, maxRequests: number): Promise<autocannon.Result> {
  let next = 0;
  const keys = target.keys;
  return autocannon({
    url: target.url,
    connections,
    duration: durationS,
    maxOverallRequests: Math.max(maxRequests, connections),
    timeout: 10,
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

function row(target: Target, connections: number, result: autocannon.Result): Row {
  return {
    target: target.name,
    connections,
    requests: result.requests.total,
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p90 ms': result.latency.p90,
    'p99 ms': result.latency.p99,
    'max ms': result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    statuses: Object.entries(result.statusCodeStats ?? {})
      .map(([status, { count }]) => `${status}:${count}`)
      .join(' '),
  };
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
const stack = await startStack({
  dataDir,
  databaseUrl: postgres.url,
  edgePort: await freePort(),
  runnerPort: await freePort(),
  edgeArgs: QUIET_WRANGLER,
  databasePool: DATABASE_POOL,
  log,
  onOutput: keep,
}).catch(async (error: unknown) => {
  await postgres.stop();
  throw new Error(`${(error as Error).message}\n${output.slice(-40).join('\n')}`);
});
const helloPort = await freePort();
const hello = startChild(
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
    ...QUIET_WRANGLER,
  ],
  { ...process.env, WRANGLER_SEND_METRICS: 'false' },
  REPO_ROOT,
  keep,
);

try {
  await waitUntilReady(`http://127.0.0.1:${helloPort}/`, hello, READY_TIMEOUT_MS);
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

  const pool = await mintTenantKeys(stack.databaseUrl, keys.tenantId, KEY_POOL);
  for (const key of pool) await new Api(stack.edgeUrl, key).expectJson('GET', '/v1/weights?limit=1', 200);
  const targets: Target[] = [
    { name: 'hello-world (ceiling)', url: `http://127.0.0.1:${helloPort}/` },
    // The edge app without the database: what routing and middleware cost above the ceiling.
    { name: 'GET /healthz (edge, no DB)', url: `${stack.edgeUrl}/healthz` },
    { name: 'GET /v1/personalizations/:id', url: `${stack.edgeUrl}/v1/personalizations/${created.id}`, keys: pool },
    { name: 'GET /v1/weights', url: `${stack.edgeUrl}/v1/weights`, keys: pool },
  ];
  const rows: Row[] = [];
  for (const target of targets) {
    log(`${target.name}: warm-up`);
    await measure(target, 10, WARMUP_S, MAX_REQUESTS);
    for (const connections of CONNECTIONS) {
      log(`${target.name}: ${connections} connections, up to ${DURATION_S} s or ${MAX_REQUESTS} requests`);
      rows.push(row(target, connections, await measure(target, connections, DURATION_S, MAX_REQUESTS)));
    }
  }
  printTable(`Edge under wrangler dev on loopback (target: p99 <= ${TARGET_P99_MS} ms at 200 connections, no errors)`, rows);
  const at200 = rows.filter((r) => r.connections === 200 && !String(r.target).startsWith('hello'));
  const meetsTarget = at200.length === 0 ? null : at200.every((r) => Number(r['p99 ms']) <= TARGET_P99_MS && r.errors === 0 && r.non2xx === 0);
  const verdict = meetsTarget === null ? 'not measured (no 200-connection run)' : meetsTarget ? 'met' : 'NOT met';
  console.log(`\np99 target at 200 connections: ${verdict} for the API routes.`);
  const path = writeResults('edge', {
    durationSeconds: DURATION_S,
    maxRequests: MAX_REQUESTS,
    apiKeys: KEY_POOL,
    databasePool: DATABASE_POOL,
    targetP99Ms: TARGET_P99_MS,
    meetsTarget,
    note: `autocannon and workerd share the same CPUs; wrangler dev (local mode), not the Workers runtime in production; the Worker reaches PostgreSQL ${DATABASE_POOL ? "through the local stack's PgBouncer where installed (standing in for Hyperdrive)" : 'directly, one backend per request'}`,
    rows,
  });
  console.log(`results: ${path}`);
} catch (error) {
  console.error(`[bench:edge] ${(error as Error).message}\n${output.slice(-40).join('\n')}`);
  process.exitCode = 1;
} finally {
  await hello.stop();
  await stack.stop();
  await postgres.stop();
  await rm(dataDir, { recursive: true, force: true });
}
