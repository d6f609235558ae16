// Progress of long phase-1 work: one line redrawn in place on a terminal, JSON lines otherwise (logs, pipes, and the
// process pool, whose parent reads its children's lines and redraws one bar for all of them).
import type { Writable } from 'node:stream';

export type ProgressMode = 'tty' | 'json';

export interface ProgressUpdate {
  readonly done: number;
  readonly total: number;
  /** Numbers worth seeing (loss, seconds per step...) and short facts (the identity just finished). */
  readonly fields?: Readonly<Record<string, number | string>>;
}

export interface Progress {
  readonly mode: ProgressMode;
  update(update: ProgressUpdate): void;
  /** A structured record (JSON line; on a terminal printed above the bar). */
  event(name: string, record: Readonly<Record<string, unknown>>): void;
  finish(): void;
}

const BAR_WIDTH = 24;

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatValue(value: number | string): string {
  if (typeof value === 'string') return value;
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4 ? value.toFixed(4) : value.toExponential(3);
}

/** The bar's text (exported for tests): label, bar, counts, percent, fields, elapsed and remaining time. */
export function progressLine(label: string, update: ProgressUpdate, elapsedSeconds: number, startDone = 0): string {
  const fraction = update.total > 0 ? Math.min(1, update.done / update.total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const rate = (update.done - startDone) / Math.max(elapsedSeconds, 1e-9);
  const remaining = rate > 0 ? (update.total - update.done) / rate : Number.NaN;
  const fields = Object.entries(update.fields ?? {}).map(([key, value]) => `${key} ${formatValue(value)}`);
  return [
    label,
    `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`,
    `${update.done}/${update.total}`,
    `${(fraction * 100).toFixed(0)}%`,
    ...fields,
    `elapsed ${formatDuration(elapsedSeconds)}`,
    `eta ${update.done >= update.total ? '0s' : formatDuration(remaining)}`,
  ].join('  ');
}

export function createProgress(label: string, options: { out?: Writable & { isTTY?: boolean }; mode?: ProgressMode; now?: () => number } = {}): Progress {
  const out = options.out ?? process.stderr;
  const mode = options.mode ?? (out.isTTY ? 'tty' : 'json');
  const now = options.now ?? (() => performance.now());
  const started = now();
  let startDone: number | undefined;
  let lastLine = '';
  const clear = () => {
    if (mode === 'tty' && lastLine) out.write('\r\x1b[2K');
  };
  return {
    mode,
    update(update) {
      startDone ??= update.done > 0 ? update.done - 1 : 0;
      const elapsed = (now() - started) / 1000;
      if (mode === 'json') {
        out.write(`${JSON.stringify({ event: 'progress', label, done: update.done, total: update.total, ...update.fields, elapsedSeconds: Number(elapsed.toFixed(3)) })}\n`);
        return;
      }
      clear();
      lastLine = progressLine(label, update, elapsed, startDone);
      out.write(lastLine);
    },
    event(name, record) {
      const line = JSON.stringify({ event: name, label, ...record });
      if (mode === 'json') {
        out.write(`${line}\n`);
        return;
      }
      clear();
      out.write(`${line}\n`);
      if (lastLine) out.write(lastLine);
    },
    finish() {
      if (mode === 'tty' && lastLine) out.write('\n');
      lastLine = '';
    },
  };
}
