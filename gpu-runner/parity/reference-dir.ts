// Where the reference fixtures live: env HDB_REFERENCE_DIR, else `../shared/reference` next to the repository root.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The reference folder; throws a clear error (never skips) when it is absent. */
export function referenceDir(): string {
  const dir = process.env.HDB_REFERENCE_DIR
    ? resolve(REPOSITORY_ROOT, process.env.HDB_REFERENCE_DIR)
    : resolve(REPOSITORY_ROOT, '..', 'shared', 'reference');
  if (!existsSync(dir)) {
    throw new Error(`reference fixtures not found at ${dir}: set HDB_REFERENCE_DIR to the reference folder`);
  }
  return dir;
}

/** A path inside the reference folder, which must exist. */
export function referencePath(...parts: string[]): string {
  const path = join(referenceDir(), ...parts);
  if (!existsSync(path)) throw new Error(`reference fixture missing: ${path}`);
  return path;
}
