// `npm start`: the whole product locally on embedded defaults (DESIGN §8): PostgreSQL (embedded, or DATABASE_URL),
// migrations, the runner on CPU with the tiny pack, the edge under `wrangler dev` (local R2, Queues, Cron), the first
// keys, and the URLs. Ctrl-C stops everything; data stays in .data/ for the next start.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyMigrations } from '../db/migrate.ts';
import { ensureTinyPack } from '../gpu-runner/pack/write-tiny-pack.ts';
import { seedKeysOnce } from './local-stack/keys.ts';
import { startLocalPostgres, type LocalPostgres } from './local-stack/postgres.ts';
import { startChild, waitUntilReady, type Child } from './local-stack/processes.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = join(ROOT, '.data');
const EDGE_PORT = Number(process.env.EDGE_PORT ?? 8787);
const RUNNER_PORT = Number(process.env.RUNNER_PORT ?? 8788);
const READY_TIMEOUT_MS = 120_000;
const CRON_INTERVAL_MS = 60_000;
const log = (line: string) => console.log(`[start] ${line}`);

/** The runner secret of this local installation, made once and kept in .data/ (never committed). */
function localRunnerSecret(): string {
  const path = join(DATA, 'runner-secret');
  if (!existsSync(path)) writeFileSync(path, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(path, 'utf8').trim();
}

const children: Child[] = [];
let database: LocalPostgres | undefined;
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping…');
    await Promise.all(children.map((c) => c.stop()));
    await database?.stop();
    log('stopped; data kept in .data/');
  }
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

try {
  mkdirSync(DATA, { recursive: true });
  database = await startLocalPostgres(DATA, log);
  log(`postgres (${database.source}) is up`);
  await applyMigrations(database.url);
  log('migrations applied');
  const modelDir = process.env.RUNNER_MODEL_DIR || ensureTinyPack();
  log(`model pack: ${modelDir}`);
  const secret = localRunnerSecret();

  const runner = startChild(
    'runner',
    process.execPath,
    ['--import', 'tsx', 'gpu-runner/main.ts'],
    {
      ...process.env,
      RUNNER_HOST: '127.0.0.1',
      RUNNER_PORT: String(RUNNER_PORT),
      RUNNER_SECRET: secret,
      RUNNER_MODEL_DIR: modelDir,
      RUNNER_STATE_DIR: join(DATA, 'runner'),
    },
    ROOT,
  );
  children.push(runner);

  const envFile = join(DATA, 'edge.env');
  writeFileSync(
    envFile,
    [
      `DATABASE_URL=${database.url}`,
      `RUNNER_URL=http://127.0.0.1:${RUNNER_PORT}`,
      `RUNNER_SECRET=${secret}`,
      `PUBLIC_URL=http://127.0.0.1:${EDGE_PORT}`,
      'WEBHOOK_ALLOW_HTTP_LOOPBACK=true',
    ].join('\n'),
    { mode: 0o600 },
  );
  const edge = startChild(
    'edge',
    process.execPath,
    [
      join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
      'dev',
      '--ip', '127.0.0.1',
      '--port', String(EDGE_PORT),
      '--persist-to', join(DATA, 'wrangler'),
      '--env-file', envFile,
      '--test-scheduled',
      '--show-interactive-dev-session=false',
    ],
    { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: process.env.CI ?? '' },
    ROOT,
  );
  children.push(edge);

  log('waiting for the runner and the edge…');
  await Promise.all([
    waitUntilReady(`http://127.0.0.1:${RUNNER_PORT}/healthz`, runner, READY_TIMEOUT_MS),
    waitUntilReady(`http://127.0.0.1:${EDGE_PORT}/healthz`, edge, READY_TIMEOUT_MS),
  ]);
  // Seeded only once the stack is up, so keys that are shown once are never lost to a failed start.
  const keys = await seedKeysOnce(database.url);

  const lines = [
    '',
    'HyperDreamBooth is running locally:',
    `  web client   http://127.0.0.1:${EDGE_PORT}/`,
    `  API docs     http://127.0.0.1:${EDGE_PORT}/v1/docs`,
    `  OpenAPI      http://127.0.0.1:${EDGE_PORT}/v1/openapi.json`,
    `  runner       http://127.0.0.1:${RUNNER_PORT}/healthz  (metrics: /metrics)`,
  ];
  if (keys) {
    lines.push(
      '',
      'Keys (shown once; they are stored hashed):',
      `  admin        ${keys.adminKey}`,
      `  demo tenant  ${keys.tenantKey}`,
    );
  } else {
    lines.push('', 'Keys were created on the first start; mint more with the admin API (POST /v1/admin/tenants/{id}/keys).');
  }
  lines.push('', 'Ctrl-C stops everything.');
  console.log(lines.join('\n'));
  // wrangler dev does not fire Cron triggers by itself; the sweep (lease expiry, stale uploads) runs through the
  // test-scheduled endpoint instead, on the same schedule as production's `* * * * *`.
  setInterval(() => {
    fetch(`http://127.0.0.1:${EDGE_PORT}/__scheduled?cron=*+*+*+*+*`).catch((error) => log(`cron sweep failed: ${(error as Error).message}`));
  }, CRON_INTERVAL_MS).unref();
} catch (error) {
  console.error(`[start] ${(error as Error).message}`);
  await stopAll(1);
}
