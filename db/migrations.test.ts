// migrations/ must be exactly what drizzle-kit generates from db/schema.ts. drizzle-kit exits 0 whether or not it
// wrote anything, so the check is on files: generate into a copy and see whether a new migration appears.
import { spawnSync } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const migrations = join(root, 'migrations');

async function sqlFiles(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name.endsWith('.sql')).sort();
}

/** Keeps only the first `count` migrations of a copied folder (SQL, snapshots and journal entries). */
async function truncateMigrations(folder: string, count: number): Promise<void> {
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: { idx: number; tag: string }[] };
  for (const entry of journal.entries.slice(count)) {
    await rm(join(folder, `${entry.tag}.sql`));
    await rm(join(folder, 'meta', `${String(entry.idx).padStart(4, '0')}_snapshot.json`));
  }
  journal.entries = journal.entries.slice(0, count);
  await writeFile(journalPath, JSON.stringify(journal, null, 2));
}

/**
 * Runs `drizzle-kit generate` against a copy of `source` (or an empty folder), optionally cut to its first `keep`
 * migrations, and returns the SQL files it added. The copy sits inside the repository and is passed as a relative
 * path: drizzle-kit mangles absolute `out` paths (`.//tmp/…`), fails to read the snapshots and still exits 0, so its
 * output is checked for errors too.
 */
async function generatedAgainst(source: string | null, keep?: number): Promise<string[]> {
  const out = join(root, '.cache', `drift-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(out, { recursive: true });
  try {
    if (source) await cp(source, out, { recursive: true });
    if (keep !== undefined) await truncateMigrations(out, keep);
    const before = await sqlFiles(out);
    const run = spawnSync(join(root, 'node_modules', '.bin', 'drizzle-kit'), ['generate', '--config', 'db/drizzle.config.ts'], {
      cwd: root,
      env: { ...process.env, HDB_MIGRATIONS_OUT: `./${relative(root, out)}` },
      encoding: 'utf8',
    });
    const output = `${run.stdout}\n${run.stderr}`;
    if (run.status !== 0 || /\bError\b|ENOENT/.test(output)) throw new Error(`drizzle-kit generate failed:\n${output}`);
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
    expect(await generatedAgainst(null)).toHaveLength(1);
    // A schema change after the last migration: simulated by dropping the newest migration from a copy.
    const count = (await sqlFiles(migrations)).length;
    expect(await generatedAgainst(migrations, count - 1)).toHaveLength(1);
  });
});
