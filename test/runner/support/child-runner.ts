// Spawns test/runner/support/runner-process.ts as a child process and follows its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_ENV } from './runner.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('./runner-process.ts', import.meta.url));

export type LogLine = { msg: string; [field: string]: unknown };

export type ChildRunner = {
  url: string;
  child: ChildProcess;
  lines: LogLine[];
  waitForLog(msg: string, timeoutMs?: number): Promise<LogLine>;
  exitCode: Promise<number | null>;
};

export async function spawnRunner(env: Record<string, string>): Promise<ChildRunner> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...TEST_ENV, RUNNER_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let buffered = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        lines.push({ msg: text });
      }
      for (const wake of [...waiters]) wake();
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exitCode = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const waitForLog = (msg: string, timeoutMs = 60_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = lines.find((line) => line.msg === msg);
        if (!found) return false;
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(found);
        return true;
      };
      const wake = () => void check();
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(new Error(`runner process never logged "${msg}"; stderr: ${stderr.slice(-2000)}`));
      }, timeoutMs);
      if (!check()) waiters.add(wake);
      void exitCode.then(() => setTimeout(() => check() || reject(new Error(`runner process exited before logging "${msg}"; stderr: ${stderr.slice(-2000)}`)), 50));
    });

  const listening = await waitForLog('runner listening');
  await waitForLog('models ready');
  return { url: String(listening.url), child, lines, waitForLog, exitCode };
}
