// node:fs for the browser bundle: the model pack's files, fetched by the page's worker, held in memory under a root
// folder, so the runner's own pack loader (pack/model-pack.ts) reads them unchanged. Read-only: whatever would write
// (caches of saved graphs) is a path the browser bundle never takes, and fails loudly if it does.
import { dirname, normalize } from './path.ts';

const files = new Map<string, Uint8Array>();
const folders = new Set<string>(['/']);

/** Puts files (relative path → bytes) under `root`. */
export function mountFiles(root: string, entries: Iterable<readonly [string, Uint8Array]>): void {
  for (const [relative, bytes] of entries) {
    const path = normalize(`${root}/${relative}`);
    files.set(path, bytes);
    for (let dir = dirname(path); !folders.has(dir); dir = dirname(dir)) folders.add(dir);
  }
}

const notFound = (path: string) => Object.assign(new Error(`ENOENT: no such file or directory, '${path}'`), { code: 'ENOENT' });
const readOnly = (what: string) => () => {
  throw new Error(`${what}: the browser bundle has no writable file system`);
};

function bytesOf(path: string): Uint8Array {
  const bytes = files.get(normalize(path));
  if (!bytes) throw notFound(path);
  return bytes;
}

export const existsSync = (path: string) => files.has(normalize(path)) || folders.has(normalize(path));

export function readFileSync(path: string, encoding?: string | { encoding?: string }): Uint8Array | string {
  const bytes = bytesOf(path);
  const enc = typeof encoding === 'string' ? encoding : encoding?.encoding;
  return enc ? new TextDecoder().decode(bytes) : bytes;
}

interface Dirent {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
}

export function readdirSync(path: string, options?: { withFileTypes?: boolean }): (string | Dirent)[] {
  const dir = normalize(path);
  if (!folders.has(dir)) throw notFound(path);
  const prefix = dir === '/' ? '/' : `${dir}/`;
  const names = new Map<string, boolean>();
  for (const file of files.keys()) if (file.startsWith(prefix)) names.set(file.slice(prefix.length).split('/')[0]!, false);
  for (const folder of folders) if (folder.startsWith(prefix) && folder !== dir) names.set(folder.slice(prefix.length).split('/')[0]!, true);
  const sorted = [...names.keys()].sort();
  if (!options?.withFileTypes) return sorted;
  return sorted.map((name) => {
    const isDir = folders.has(normalize(`${prefix}${name}`));
    return { name, isFile: () => !isDir, isDirectory: () => isDir };
  });
}

export function statSync(path: string) {
  const normal = normalize(path);
  const isDir = folders.has(normal);
  const size = isDir ? 0 : bytesOf(normal).byteLength;
  return { size, isFile: () => !isDir, isDirectory: () => isDir, mtimeMs: 0 };
}

const descriptors = new Map<number, Uint8Array>();
let nextFd = 3;

export function openSync(path: string): number {
  const fd = nextFd++;
  descriptors.set(fd, bytesOf(path));
  return fd;
}

export function fstatSync(fd: number) {
  const bytes = descriptors.get(fd);
  if (!bytes) throw new Error(`EBADF: ${fd}`);
  return { size: bytes.byteLength, isFile: () => true, isDirectory: () => false };
}

export function readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | bigint | null): number {
  const bytes = descriptors.get(fd);
  if (!bytes) throw new Error(`EBADF: ${fd}`);
  const start = Number(position ?? 0);
  const chunk = bytes.subarray(start, Math.min(bytes.byteLength, start + length));
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).set(chunk, offset);
  return chunk.byteLength;
}

export const closeSync = (fd: number) => void descriptors.delete(fd);

/** Yields the file in one chunk (enough for hashing it: pack/model-pack.ts's packDigest). */
export function createReadStream(path: string): AsyncIterable<Uint8Array> {
  const bytes = bytesOf(path);
  return {
    async *[Symbol.asyncIterator]() {
      yield bytes;
    },
  };
}

export const writeFileSync = readOnly('writeFileSync');
export const writeSync = readOnly('writeSync');
export const fsyncSync = readOnly('fsyncSync');
export const ftruncateSync = readOnly('ftruncateSync');
export const renameSync = readOnly('renameSync');
export const mkdirSync = readOnly('mkdirSync');
export const rmSync = readOnly('rmSync');
export const unlinkSync = readOnly('unlinkSync');
export const mkdtempSync = readOnly('mkdtempSync');
export const copyFileSync = readOnly('copyFileSync');
export const appendFileSync = readOnly('appendFileSync');
export const createWriteStream = readOnly('createWriteStream');
export const promises = {
  readFile: async (path: string, encoding?: string) => readFileSync(path, encoding),
  writeFile: readOnly('promises.writeFile'),
  mkdir: readOnly('promises.mkdir'),
  rm: readOnly('promises.rm'),
  rename: readOnly('promises.rename'),
  stat: async (path: string) => statSync(path),
};
export const constants = { F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1 };
export default {
  existsSync, readFileSync, readdirSync, statSync, openSync, fstatSync, readSync, closeSync, createReadStream,
  writeFileSync, writeSync, fsyncSync, ftruncateSync, renameSync, mkdirSync, rmSync, unlinkSync, mkdtempSync, copyFileSync, appendFileSync, createWriteStream, promises, constants,
};
