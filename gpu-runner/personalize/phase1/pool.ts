// A small process pool for pre-optimization: `workers` children of a command, child i taking shard i/n, each printing
// JSON-line progress on stdout; the parent sums them into one progress bar and fails if any child fails.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Progress } from './progress.ts';

export interface PoolOptions {
  /** The command file every child runs (the phase-1 command, gpu-runner/commands/phase1.ts). */
  readonly command: string;
  readonly workers: number;
  /** The subcommand and its flags, forwarded to every child (later flags win, so the shard flags are appended). */
  readonly args: readonly string[];
  /** How many identities each shard holds (for the bar's total before the children report). */
  readonly shardSizes: readonly number[];
  readonly progress: Progress;
}

export async function runShardPool(options: PoolOptions): Promise<void> {
  const done = new Array<number>(options.workers).fill(0);
  const total = options.shardSizes.reduce((a, b) => a + b, 0);
  const children: ChildProcess[] = [];
  const runs = Array.from({ length: options.workers }, (_, index) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', options.command, ...options.args, '--workers', '1', '--shard', `${index}/${options.workers}`, '--progress', 'json'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let record: { event?: string; done?: number } & Record<string, unknown>;
        try {
          record = JSON.parse(line) as typeof record;
        } catch {
          process.stderr.write(`[shard ${index}] ${line}\n`);
          return;
        }
        if (record.event === 'progress' && typeof record.done === 'number') {
          done[index] = record.done;
          const { event: _e, label: _l, done: _d, total: _t, elapsedSeconds: _s, ...fields } = record;
          options.progress.update({ done: done.reduce((a, b) => a + b, 0), total, fields: { ...(fields as Record<string, number | string>), shard: index } });
        } else if (record.event === 'identity') {
          const { event: _e, label: _l, ...rest } = record;
          options.progress.event('identity', { shard: index, ...rest });
        } else {
          process.stderr.write(`${line}\n`);
        }
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`pre-optimize shard ${index}/${options.workers} exited with ${signal ?? `code ${code}`}`))));
    }),
  );
  try {
    await Promise.all(runs);
  } catch (error) {
    // One shard failed: stop the others we started (their finished identities stay; a rerun resumes).
    for (const child of children) if (child.exitCode === null && child.pid !== undefined) child.kill('SIGTERM');
    await Promise.allSettled(runs);
    throw error;
  }
}
