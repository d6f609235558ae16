// The whole product as local processes: PostgreSQL, migrations, the runner (CPU, a model pack), the edge under
// `wrangler dev` (real workerd with local R2, Queues and Cron). Used by `npm start` and by the end-to-end tests.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyMigrations } from '../../db/migrate.ts';
import { defaultModelDir } from '../../gpu-runner/pack/default-pack.ts';
import { freePort, portAnswers } from '../../test/support/postgres.ts';
import { sealingKeysIn } from './keys.ts';
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
   * The edge reaches PostgreSQL through the local pool (scripts/local-stack/pg-pool.ts), as it reaches it through
   * Hyperdrive in production: true unless set to false (then every request starts a PostgreSQL backend).
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
  /** Stops the embedded PostgreSQL for `downMs` and starts it again (not for a given DATABASE_URL). */
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
  let pool: Child | undefined;
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

    const edgeDatabaseUrl = options.databasePool === false ? postgres.url : await startPool(postgres.url);
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

    async function startPool(targetUrl: string): Promise<string> {
      const port = await freePort();
      pool = startChild('pool', process.execPath, ['--import', 'tsx', 'scripts/local-stack/pg-pool-main.ts'], { ...process.env, PG_POOL_TARGET_URL: targetUrl, PG_POOL_PORT: String(port) }, REPO_ROOT, options.onOutput);
      const deadline = Date.now() + READY_TIMEOUT_MS;
      while (!(await portAnswers('127.0.0.1', port))) {
        if (pool.process.exitCode !== null) throw new Error(`the database pool exited with code ${pool.process.exitCode} before it was ready`);
        if (Date.now() > deadline) throw new Error(`the database pool did not listen on port ${port} within ${READY_TIMEOUT_MS / 1000} s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const url = new URL(targetUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      log(`database pool on 127.0.0.1:${port} (stands in for Hyperdrive)`);
      return url.toString();
    }

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
      restartPostgres: (downMs?: number) => postgres.restart(downMs),
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
