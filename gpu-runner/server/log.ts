// Structured JSON-lines logs (STYLE: "Logs are structured (JSON lines) with a job id").
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line (e.g. `{ job_id }`). */
  child(bindings: LogFields): Logger;
}

export type LogSink = (line: string) => void;

const stdoutSink: LogSink = (line) => {
  process.stdout.write(`${line}\n`);
};

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, ...(value.stack ? { stack: value.stack } : {}) };
  }
  return value;
}

export function createLogger(options: { level?: LogLevel; sink?: LogSink; bindings?: LogFields } = {}): Logger {
  const threshold = SEVERITY[options.level ?? 'info'];
  const sink = options.sink ?? stdoutSink;
  const bindings = options.bindings ?? {};

  const write = (level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void => {
    if (SEVERITY[level] < threshold) return;
    const line: LogFields = { time: new Date().toISOString(), level, msg: message, ...bindings };
    for (const [key, value] of Object.entries(fields ?? {})) line[key] = serialize(value);
    sink(JSON.stringify(line));
  };

  return {
    debug: (message, fields) => write('debug', message, fields),
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
    child: (more) => createLogger({ level: options.level ?? 'info', sink, bindings: { ...bindings, ...more } }),
  };
}
