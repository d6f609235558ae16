// `npm start`: the whole product locally on embedded defaults (docs/architecture.md): PostgreSQL (embedded, or
// DATABASE_URL), migrations, the runner on CPU with the world pack (the tiny pack until the world pack is complete),
// the edge under `wrangler dev` (local R2, Queues, Cron), the first keys, and the URLs. Ctrl-C stops everything; data
// stays in .data/ for the next start.
import { join } from 'node:path';
import { buildDevice } from './build-device.ts';
import { seedKeysOnce } from './local-stack/keys.ts';
import { REPO_ROOT, startStack, type Stack } from './local-stack/stack.ts';

const EDGE_PORT = Number(process.env.EDGE_PORT ?? 8787);
const RUNNER_PORT = Number(process.env.RUNNER_PORT ?? 8788);
const CRON_INTERVAL_MS = 60_000;
const log = (line: string) => console.log(`[start] ${line}`);
/** wrangler dev tries to fetch Cloudflare's `request.cf` data and prints a stack trace when offline; it falls back. */
const OFFLINE_NOISE = /Unable to fetch the `Request\.cf` object|getaddrinfo ENOTFOUND workers\.cloudflare\.com|at GetAddrInfoReqWrap/;

let stack: Stack | undefined;
let stopping = false;
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping…');
    await stack?.stop();
    log('stopped; data kept in .data/');
  }
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

try {
  // The web client's "on this device" mode: the library bundled for the browser and the pack as static files.
  await buildDevice({ ...(process.env.RUNNER_MODEL_DIR ? { packDir: process.env.RUNNER_MODEL_DIR } : {}), quiet: true }).then(
    (manifest) => log(`on this device: ${manifest.id} served from edge/client/pack/`),
    (error: unknown) => log(`on this device is unavailable: ${error instanceof Error ? error.message : String(error)}`),
  );
  stack = await startStack({
    dataDir: join(REPO_ROOT, '.data'),
    edgePort: EDGE_PORT,
    runnerPort: RUNNER_PORT,
    ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
    ...(process.env.RUNNER_MODEL_DIR ? { modelDir: process.env.RUNNER_MODEL_DIR } : {}),
    // Local development: webhook receivers on this machine (http://127.0.0.1:…) are allowed.
    edgeVars: { WEBHOOK_ALLOW_HTTP_LOOPBACK: 'true' },
    log,
    onOutput: (name, line) => {
      if (!OFFLINE_NOISE.test(line)) console.log(`[${name}] ${line}`);
    },
  });
  // Seeded only once the stack is up, so keys that are shown once are never lost to a failed start.
  const keys = await seedKeysOnce(stack.databaseUrl);
  const lines = [
    '',
    'HyperDreamBooth is running locally:',
    `  web client   ${stack.edgeUrl}/`,
    `  API docs     ${stack.edgeUrl}/docs`,
    `  OpenAPI      ${stack.edgeUrl}/v1/openapi.json`,
    `  runner       ${stack.runnerUrl}/healthz  (metrics: /metrics)`,
    '',
    keys
      ? `Keys (shown once; stored hashed):\n  admin        ${keys.adminKey}\n  demo tenant  ${keys.tenantKey}`
      : 'Keys were created on the first start; mint more with the admin API (POST /v1/admin/tenants/{id}/keys).',
    '',
    'Ctrl-C stops everything.',
  ];
  console.log(lines.join('\n'));
  // wrangler dev does not fire Cron triggers by itself; the sweep (lease expiry, stale uploads) runs through the
  // test-scheduled endpoint (`wrangler dev --test-scheduled`) instead, on production's schedule (`* * * * *`).
  // Once at start too: leases that ran out while the stack was down are re-dispatched at once.
  const edgeUrl = stack.edgeUrl;
  const sweep = () =>
    fetch(`${edgeUrl}/__scheduled?cron=*+*+*+*+*`)
      .then((response) => (response.ok ? undefined : log(`cron sweep answered ${response.status}`)))
      .catch((error) => log(`cron sweep failed: ${(error as Error).message}`));
  void sweep();
  setInterval(sweep, CRON_INTERVAL_MS).unref();
} catch (error) {
  console.error(`[start] ${(error as Error).message}`);
  await stopAll(1);
}
