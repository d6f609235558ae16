// The local stack's PostgreSQL pool as its own process (scripts/local-stack/pg-pool.ts), so its work never shares an
// event loop with the process that starts the stack (a benchmark's load generator, a test runner).
// PG_POOL_TARGET_URL: the real server; PG_POOL_PORT: where to listen on 127.0.0.1; PG_POOL_MAX: server connections.
import { startPgPool } from './pg-pool.ts';

const targetUrl = process.env.PG_POOL_TARGET_URL;
if (!targetUrl) throw new Error('set PG_POOL_TARGET_URL to the PostgreSQL the pool serves');
const pool = await startPgPool({
  targetUrl,
  port: Number(process.env.PG_POOL_PORT ?? 0),
  ...(process.env.PG_POOL_MAX ? { maxServerConnections: Number(process.env.PG_POOL_MAX) } : {}),
});
console.log(`pool listening on 127.0.0.1:${pool.port}`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    const { serverConnectionsOpened, clientSessions } = pool.stats();
    console.log(`pool stopping: ${clientSessions} client sessions served by ${serverConnectionsOpened} server connections`);
    void pool.close().then(() => process.exit(0));
  });
}
