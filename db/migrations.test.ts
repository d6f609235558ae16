// migrations/ must be exactly what drizzle-kit generates from db/schema.ts. drizzle-kit exits 0 whether or not it
// wrote anything, so the check is on files: generate into a copy and see whether a new migration appears.
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const migrations = join(root, 'migrations');

async function sqlFiles(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name.endsWith('.sql')).sort();
}

/** Runs `drizzle-kit generate` against a copy of `source` (or an empty folder) and returns the SQL files it added. */
async function generatedAgainst(source: string | null): Promise<string[]> {
  const out = await mkdtemp(join(tmpdir(), 'hdb-drift-'));
  try {
    if (source) await cp(source, out, { recursive: true });
    const before = await sqlFiles(out);
    const run = spawnSync(join(root, 'node_modules', '.bin', 'drizzle-kit'), ['generate', '--config', 'db/drizzle.config.ts'], {
      cwd: root,
      env: { ...process.env, HDB_MIGRATIONS_OUT: out },
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`drizzle-kit generate failed:\n${run.stdout}\n${run.stderr}`);
    return (await sqlFiles(out)).filter((name) => !before.includes(name));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

describe('migrations', () => {
  it('match db/schema.ts (run `npm run db:generate` after changing the schema)', async () => {
    expect(await generatedAgainst(migrations)).toEqual([]);
  });

  it('the drift check notices a schema that is ahead of the migrations', async () => {
    const added = await generatedAgainst(null);
    expect(added).toHaveLength(1);
  });
});
