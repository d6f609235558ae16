// One whole local stack per test file: a fresh database on the test PostgreSQL, a temporary data folder, free ports,
// the runner on the tiny pack (or a pack the test names) and the edge under `wrangler dev`; an admin key and a first
// tenant key.
import { cpSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTinyPack } from '../../../gpu-runner/pack/write-tiny-pack.ts';
import { seedKeysOnce } from '../../../scripts/local-stack/keys.ts';
import { startStack, type Stack, type StackOptions } from '../../../scripts/local-stack/stack.ts';
import { freePort } from '../../../scripts/local-stack/ports.ts';
import { createFreshDatabase, startPostgres, type PostgresServer } from '../../support/postgres.ts';
import { Api } from './api.ts';

/** Child output kept for failure messages; HDB_E2E_VERBOSE=1 prints it live. */
const OUTPUT_LINES_KEPT = 400;

export interface E2eStack {
  readonly stack: Stack;
  readonly admin: Api;
  readonly tenant: Api;
  /** The last lines the runner and the edge printed. */
  output(): string;
  /** Lines printed since `mark` (a value returned by `outputMark`). */
  outputSince(mark: number): string[];
  outputMark(): number;
  /** Runs the Cron sweep now (lease expiry, stale uploads), as production's schedule would. */
  runCron(): Promise<void>;
  /** A second tenant and its key, made through the admin API. */
  newTenant(name: string): Promise<Api>;
  close(): Promise<void>;
}

export interface E2eStackOptions extends Pick<StackOptions, 'edgeVars' | 'runnerEnv'> {
  /**
   * An embedded PostgreSQL of the stack's own (in its data folder), which a test may restart; otherwise a fresh
   * database on the test PostgreSQL (DATABASE_URL, the machine's, or embedded: test/support/postgres.ts).
   */
  readonly ownPostgres?: boolean;
  /** Every line the runner and the edge print, besides the kept tail (e.g. a benchmark counting runner log events). */
  readonly onOutput?: (name: string, line: string) => void;
  /**
   * The model pack the runner serves, copied; the tiny pack when absent. A test that saves weights made by the web
   * client's device mode names the pack the device build serves (the world pack): the runner refuses weights made
   * for another base model (docs/api.md, "Importing weights").
   */
  readonly packDir?: string;
}

/** The test PostgreSQL's database, or nothing when the stack brings its own server. */
type DatabaseSource = { server: PostgresServer; database: { url: string; drop(): Promise<void> } } | null;

export async function startE2eStack(options: E2eStackOptions = {}): Promise<E2eStack> {
  let source: DatabaseSource = null;
  if (!options.ownPostgres) {
    const server = await startPostgres();
    source = { server, database: await createFreshDatabase(server.adminUrl, 'hdb_e2e') };
  }
  const releaseDatabase = async () => {
    if (!source) return;
    await source.database.drop().catch(() => {});
    await source.server.stop();
  };
  const dataDir = await mkdtemp(join(tmpdir(), 'hdb-e2e-'));
  // A private copy of the pack: the shared one may be rewritten mid-run (npm run pack:tiny, or a training writing the
  // world pack's hypernetwork).
  const modelDir = join(dataDir, 'model-pack');
  cpSync(options.packDir ?? ensureTinyPack(), modelDir, { recursive: true });
  const lines: string[] = [];
  let total = 0;
  const onOutput = (name: string, line: string) => {
    total += 1;
    lines.push(`[${name}] ${line}`);
    if (lines.length > OUTPUT_LINES_KEPT) lines.shift();
    if (process.env.HDB_E2E_VERBOSE) console.log(`[${name}] ${line}`);
    options.onOutput?.(name, line);
  };
  let stack: Stack;
  try {
    stack = await startStack({
      dataDir,
      ...(source ? { databaseUrl: source.database.url } : {}),
      modelDir,
      edgePort: await freePort(),
      runnerPort: await freePort(),
      edgeVars: { WEBHOOK_ALLOW_HTTP_LOOPBACK: 'true', ...options.edgeVars },
      runnerEnv: options.runnerEnv,
      onOutput,
    });
  } catch (error) {
    await releaseDatabase();
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n--- stack output ---\n${lines.join('\n')}`);
  }
  const keys = await seedKeysOnce(stack.databaseUrl);
  if (!keys) throw new Error('a fresh database already had keys');
  const admin = new Api(stack.edgeUrl, keys.adminKey);
  return {
    stack,
    admin,
    tenant: new Api(stack.edgeUrl, keys.tenantKey),
    output: () => lines.join('\n'),
    outputMark: () => total,
    outputSince: (mark) => lines.slice(Math.max(0, lines.length - (total - mark))),
    async runCron() {
      // `wrangler dev --test-scheduled` (stack.ts); its /cdn-cgi/handler/scheduled fails when static assets are served.
      const response = await fetch(`${stack.edgeUrl}/__scheduled?cron=${encodeURIComponent('* * * * *')}`);
      if (!response.ok) throw new Error(`cron sweep answered ${response.status}: ${await response.text()}`);
    },
    async newTenant(name) {
      const tenant = await admin.expectJson<{ id: string }>('POST', '/v1/admin/tenants', 201, { json: { name } });
      const key = await admin.expectJson<{ key: string }>('POST', `/v1/admin/tenants/${tenant.id}/keys`, 201, { json: { name: `${name} key` } });
      return new Api(stack.edgeUrl, key.key);
    },
    async close() {
      await stack.stop();
      await releaseDatabase();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
