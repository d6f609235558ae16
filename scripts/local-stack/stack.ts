// The whole product as local processes: PostgreSQL, migrations, the runner (CPU, a model pack), the edge under
// `wrangler dev` (real workerd with local R2, Queues and Cron). Used by `npm start` and by the end-to-end tests.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyMigrations } from '../../db/migrate.ts';
import { defaultModelDir } from '../../gpu-runner/pack/default-pack.ts';
import { sealingKeysIn } from './keys.ts';
import { describeRoute, startPgBouncer, type DatabaseRoute } from './pgbouncer.ts';
import { startLocalPostgres } from './postgres.ts';
import { startChild, waitUntilReady, type Child } from './processes.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_TIMEOUT_MS = 180_000;

export interface StackOptions {
  /** Where state lives between starts: embedded Postgres data, runner outbox, local R2/Queues, secrets. */
  readonly dataDir: string;
  readonly edgePort: number;
  readonly runnerPort: number;
  /** An existing database; an embedded server in `dataDir` when absent. */
  readonly databaseUrl?: string;
  /** A diffusers model pack; when absent the trained world pack if complete, else the tiny pack (written on first use). */
  readonly modelDir?: string;
  /** Extra [vars] for the edge, e.g. WEBHOOK_ALLOW_HTTP_LOOPBACK or shorter leases in tests. */
  readonly edgeVars?: Readonly<Record<string, string>>;
  readonly runnerEnv?: Readonly<Record<string, string>>;
  /** Extra `wrangler dev` arguments, e.g. `--log-level=warn` for benchmarks (no line per request). */
  readonly edgeArgs?: readonly string[];
  readonly log?: (line: string) => void;
  /** Child output lines; printed with a prefix when absent. */
  readonly onOutput?: (name: string, line: string) => void;
  /**
   * The edge reaches PostgreSQL through PgBouncer (scripts/local-stack/pgbouncer.ts), as it reaches it through
   * Hyperdrive in production: true unless set to false, or PgBouncer is not installed (then every request starts a
   * PostgreSQL backend).
   */
  readonly databasePool?: boolean;
}

export interface Stack {
  readonly edgeUrl: string;
  readonly runnerUrl: string;
  readonly databaseUrl: string;
  readonly runnerSecret: string;
  readonly modelDir: string;
  /** Starts (again) the runner, e.g. after a test killed it. */
  restartRunner(): Promise<void>;
  killRunner(signal?: NodeJS.Signals): Promise<void>;
  restartEdge(): Promise<void>;
  /**
   * Stops the embedded PostgreSQL for `downMs` and starts it again (not for a given DATABASE_URL); resolves once a query
   * through the edge's route to it (PgBouncer or direct) succeeds.
   */
  restartPostgres(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The runner secret of this installation, made once and kept in the data folder (never committed). */
function runnerSecretIn(dataDir: string): string {
  const path = join(dataDir, 'runner-secret');
  if (!existsSync(path)) writeFileSync(path, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(path, 'utf8').trim();
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? (() => {});
  mkdirSync(options.dataDir, { recursive: true });
  const postgres = options.databaseUrl
    ? {
        url: options.databaseUrl,
        source: 'given' as const,
        stop: async () => {},
        restart: async () => {
          throw new Error('the stack runs on a given database (DATABASE_URL); only its embedded server can be restarted');
        },
      }
    : await startLocalPostgres(options.dataDir, log);
  log(`postgres (${postgres.source}) is up`);
  let runner: Child | undefined;
  let edge: Child | undefined;
  let pool: DatabaseRoute | undefined;
  const stopChildren = async () => {
    await Promise.all([runner?.stop(), edge?.stop()]);
    await pool?.stop();
  };
  try {
    await applyMigrations(postgres.url);
    log('migrations applied');
    const modelDir = options.modelDir ?? defaultModelDir();
    log(`model pack: ${modelDir}`);
    const secret = runnerSecretIn(options.dataDir);
    const edgeUrl = `http://127.0.0.1:${options.edgePort}`;
    const runnerUrl = `http://127.0.0.1:${options.runnerPort}`;

    const launchRunner = async () => {
      runner = startChild(
        'runner',
        process.execPath,
        ['--import', 'tsx', 'gpu-runner/main.ts'],
        {
          ...process.env,
          RUNNER_HOST: '127.0.0.1',
          RUNNER_PORT: String(options.runnerPort),
          RUNNER_SECRET: secret,
          RUNNER_MODEL_DIR: modelDir,
          RUNNER_STATE_DIR: join(options.dataDir, 'runner'),
          RUNNER_EXECUTION_PROVIDER: 'cpu',
          ...options.runnerEnv,
        },
        REPO_ROOT,
        options.onOutput,
      );
      await waitUntilReady(`${runnerUrl}/healthz`, runner, READY_TIMEOUT_MS);
    };

    let edgeDatabaseUrl = postgres.url;
    if (options.databasePool === false) {
      log('database pool: none, the edge connects to PostgreSQL directly (databasePool: false)');
    } else {
      pool = await startPgBouncer({ targetUrl: postgres.url, dataDir: options.dataDir, ...(options.onOutput ? { onOutput: options.onOutput } : {}) });
      edgeDatabaseUrl = pool.url;
      log(describeRoute(pool));
    }
    const envFile = join(options.dataDir, 'edge.env');
    const vars: Record<string, string> = {
      DATABASE_URL: edgeDatabaseUrl,
      RUNNER_URL: runnerUrl,
      RUNNER_SECRET: secret,
      WEBHOOK_SEALING_KEYS: sealingKeysIn(options.dataDir),
      PUBLIC_URL: edgeUrl,
      ...options.edgeVars,
    };
    writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n'), { mode: 0o600 });
    const launchEdge = async () => {
      edge = startChild(
        'edge',
        process.execPath,
        [
          join(REPO_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
          'dev',
          '--ip', '127.0.0.1',
          '--port', String(options.edgePort),
          '--persist-to', join(options.dataDir, 'wrangler'),
          '--env-file', envFile,
          '--test-scheduled',
          '--show-interactive-dev-session=false',
          ...(options.edgeArgs ?? []),
        ],
        { ...process.env, WRANGLER_SEND_METRICS: 'false' },
        REPO_ROOT,
        options.onOutput,
      );
      await waitUntilReady(`${edgeUrl}/healthz`, edge, READY_TIMEOUT_MS);
    };

    log('starting the runner and the edge…');
    await Promise.all([launchRunner(), launchEdge()]);
    return {
      edgeUrl,
      runnerUrl,
      databaseUrl: postgres.url,
      runnerSecret: secret,
      modelDir,
      restartRunner: async () => {
        await runner?.stop();
        await launchRunner();
      },
      killRunner: async (signal: NodeJS.Signals = 'SIGKILL') => {
        await runner?.stop(signal);
      },
      restartEdge: async () => {
        await edge?.stop();
        await launchEdge();
      },
      restartPostgres: async (downMs?: number) => {
        await postgres.restart(downMs);
        // Back means back for the edge: through PgBouncer, which logs in to the restarted server again.
        await pool?.serving();
      },
      stop: async () => {
        await stopChildren();
        await postgres.stop();
      },
    };
  } catch (error) {
    await stopChildren();
    await postgres.stop();
    throw error;
  }
}
