// What the runner reads from a pack's model_index.json beyond diffusers' keys, and how logs and benchmarks name a
// pack before loading it. Kept apart from model-pack.ts so naming a pack does not load the model code.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { parsePythonJson } from '../io/python-json.ts';

/** What the runner reads from model_index.json beyond diffusers' keys (diffusers ignores keys starting with "_"). */
export function packIndex(dir: string): { id?: string; nativeResolution?: number } {
  const path = join(dir, 'model_index.json');
  if (!existsSync(path)) return {};
  const index = parsePythonJson(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const id = index._hdb_pack_id;
  const native = index._hdb_native_resolution;
  if (id !== undefined && (typeof id !== 'string' || !/^[A-Za-z0-9._-]+$/.test(id))) throw new Error(`${path}: _hdb_pack_id must be a name of [A-Za-z0-9._-], got ${JSON.stringify(id)}`);
  if (native !== undefined && !(typeof native === 'number' && Number.isInteger(native) && native > 0)) throw new Error(`${path}: _hdb_native_resolution must be a positive integer, got ${JSON.stringify(native)}`);
  return { ...(id ? { id } : {}), ...(native ? { nativeResolution: native } : {}) };
}

/**
 * How logs and benchmarks name the pack in `dir` before it is loaded: its model id (model_index.json's
 * `_hdb_pack_id`, else the folder's name) and the folder, relative to the working directory when inside it.
 */
export function packLabel(dir: string): string {
  const rel = relative(process.cwd(), dir);
  const shown = rel && !rel.startsWith('..') ? rel : dir;
  let id: string | undefined;
  try {
    id = packIndex(dir).id;
  } catch {
    // A malformed model_index.json fails the load itself, with its reason; a label falls back to the folder's name.
  }
  return `${id ?? basename(dir)} (${shown})`;
}
