// Where the reference fixtures live: env HDB_REFERENCE_DIR (relative to the repository root, or absolute), else the
// repository's own `test/fixtures/reference/` (its README says what made them), so a fresh clone tests itself.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The reference fixtures committed with the repository. */
export const BUNDLED_REFERENCE_DIR = join(REPOSITORY_ROOT, 'test', 'fixtures', 'reference');

/** The reference folder; throws a clear error (never skips) when it is absent. */
export function referenceDir(): string {
  const dir = process.env.HDB_REFERENCE_DIR ? resolve(REPOSITORY_ROOT, process.env.HDB_REFERENCE_DIR) : BUNDLED_REFERENCE_DIR;
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
