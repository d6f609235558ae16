// The `process` global for the browser bundle (injected by scripts/build-device.ts): an empty environment, so every
// setting takes its default, and log lines to the console.
export const process = {
  env: {} as Record<string, string | undefined>,
  pid: 0,
  platform: 'browser',
  arch: 'wasm',
  versions: {} as Record<string, string>,
  argv: [] as string[],
  cwd: () => '/',
  hrtime: { bigint: () => BigInt(Math.round(performance.now() * 1e6)) },
  memoryUsage: () => ({ rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 }),
  stderr: { write: (text: string) => void console.warn(text.trimEnd()) },
  stdout: { write: (text: string) => void console.log(text.trimEnd()) },
  on: () => process,
  once: () => process,
  emitWarning: (message: string) => console.warn(message),
  nextTick: (fn: (...args: unknown[]) => void, ...args: unknown[]) => queueMicrotask(() => fn(...args)),
};
