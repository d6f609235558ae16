// node:path for the browser bundle: POSIX paths over the in-memory pack (./fs.ts), enough for the library's joins.
export const sep = '/';
export const delimiter = ':';

export function normalize(path: string): string {
  const absolute = path.startsWith('/');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
    else if (part !== '..' || !absolute) parts.push(part);
  }
  const joined = parts.join('/');
  return absolute ? `/${joined}` : joined || '.';
}

export const join = (...parts: string[]) => normalize(parts.filter((p) => p !== '').join('/'));
export const isAbsolute = (path: string) => path.startsWith('/');
export const resolve = (...parts: string[]) => {
  let out = '/';
  for (const part of parts) out = isAbsolute(part) ? part : `${out}/${part}`;
  return normalize(out);
};
export function dirname(path: string): string {
  const normal = normalize(path);
  const at = normal.lastIndexOf('/');
  return at < 0 ? '.' : at === 0 ? '/' : normal.slice(0, at);
}
export function basename(path: string, ext?: string): string {
  const base = normalize(path).split('/').pop() ?? '';
  return ext && base.endsWith(ext) ? base.slice(0, -ext.length) : base;
}
export function extname(path: string): string {
  const base = basename(path);
  const at = base.lastIndexOf('.');
  return at <= 0 ? '' : base.slice(at);
}
export function relative(from: string, to: string): string {
  const a = resolve(from).split('/').filter(Boolean);
  const b = resolve(to).split('/').filter(Boolean);
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return [...a.slice(n).map(() => '..'), ...b.slice(n)].join('/');
}
export const posix = { sep, delimiter, normalize, join, isAbsolute, resolve, dirname, basename, extname, relative };
export default posix;
