// The edge under `wrangler dev` for its static assets only (the web client, edge/client/, with its _headers): what the
// "on this device" mode needs. The API's variables are placeholders; requests to /v1 would fail on the database.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { startChild, waitUntilReady } from './processes.ts';
import { REPO_ROOT } from './stack.ts';

const READY_TIMEOUT_MS = 120_000;

export interface StaticEdge {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startStaticEdge(onOutput: (name: string, line: string) => void = () => {}): Promise<StaticEdge> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hdb-static-edge-'));
  const envFile = join(dataDir, 'edge.env');
  writeFileSync(envFile, 'RUNNER_SECRET=static-edge-placeholder-secret-0123456789\nDATABASE_URL=postgres://none@127.0.0.1:1/none\n', { mode: 0o600 });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [join(REPO_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', join(dataDir, 'wrangler'), '--env-file', envFile, '--show-interactive-dev-session=false'];
  const child = startChild('edge', process.execPath, args, { ...process.env, WRANGLER_SEND_METRICS: 'false' }, REPO_ROOT, onOutput);
  try {
    await waitUntilReady(`${url}/index.html`, child, READY_TIMEOUT_MS);
  } catch (error) {
    await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    stop: async () => {
      await child.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
