// The node: built-ins the library imports but the browser bundle never calls (worker threads, the OS, module
// resolution, image codecs): importing works, calling one names what is missing.
const unavailable = (what: string) => (..._args: unknown[]): never => {
  throw new Error(`${what} is not available in the browser bundle`);
};

const cores = () => (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;

export const tmpdir = () => '/tmp';
export const platform = () => 'browser';
export const arch = () => 'wasm';
export const cpus = () => Array.from({ length: cores() }, () => ({}));
export const availableParallelism = cores;
export const totalmem = () => 0;
export const freemem = () => 0;
export const homedir = () => '/';
export const hostname = () => 'browser';
export const EOL = '\n';

export const fileURLToPath = (url: string | URL) => decodeURIComponent(new URL(String(url)).pathname);
export const pathToFileURL = (path: string) => new URL(`file://${path}`);

export const createRequire = unavailable('node:module createRequire');
export const Worker = unavailable('node:worker_threads Worker');
export const parentPort = null;
export const workerData = undefined;
export const isMainThread = true;
export const spawn = unavailable('node:child_process');
export const execFile = unavailable('node:child_process');
export const execFileSync = unavailable('node:child_process');
export const spawnSync = unavailable('node:child_process');
export const promisify = <T>(fn: T) => fn;
export const inspect = (value: unknown) => JSON.stringify(value);
export const setTimeout = globalThis.setTimeout;
export default {};
export const gunzipSync = unavailable('node:zlib gunzipSync');
export const gzipSync = unavailable('node:zlib gzipSync');
