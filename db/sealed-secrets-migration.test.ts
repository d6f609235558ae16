// Migration 0002 (sealed webhook secrets) on a database that already holds secrets in clear: every row survives
// unchanged and in clear until the re-seal step seals it (edge/webhooks/README.md, "Sealed at rest"); SQL alone
// cannot seal, since the key is not in the database.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, createFreshDatabase, MIGRATIONS_DIR, REPO_ROOT, startPostgres, type PostgresServer } from '../test/support/postgres.ts';

const BEFORE_SEALING = '0001_webhooks';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.stop());

/** A copy of migrations/ that ends at `lastTag`, as a database deployed before later migrations has it. */
async function migrationsUpTo(lastTag: string): Promise<string> {
  const folder = await mkdtemp(join(REPO_ROOT, '.cache', 'migrations-'));
  await cp(MIGRATIONS_DIR, folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: { tag: string }[] };
  const keep = journal.entries.findIndex((entry) => entry.tag === lastTag) + 1;
  expect(keep).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, keep);
  await writeFile(journalPath, JSON.stringify(journal));
  return folder;
}

describe('migration 0002_sealed_webhook_secrets', () => {
  it('keeps every clear secret as it was; new columns empty; one form per row enforced', async () => {
    const database = await createFreshDatabase(server.adminUrl);
    const old = await migrationsUpTo(BEFORE_SEALING);
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      await applyMigrations(database.url, old);
      await sql`INSERT INTO tenants (id, name) VALUES ('ten_old', 'before sealing')`;
      await sql`INSERT INTO webhook_secrets (id, tenant_id, secret) VALUES ('whs_a', 'ten_old', 'whsec_AAAA'), ('whs_b', 'ten_old', 'whsec_BBBB')`;

      await applyMigrations(database.url);
      const rows = await sql`SELECT id, secret, sealed_secret, key_id FROM webhook_secrets ORDER BY id`;
      expect(rows.map((r) => ({ ...r }))).toEqual([
        { id: 'whs_a', secret: 'whsec_AAAA', sealed_secret: null, key_id: null },
        { id: 'whs_b', secret: 'whsec_BBBB', sealed_secret: null, key_id: null },
      ]);
      await expect(sql`INSERT INTO webhook_secrets (id, tenant_id) VALUES ('whs_none', 'ten_old')`).rejects.toThrow(/webhook_secrets_one_form_check/);
      await expect(sql`UPDATE webhook_secrets SET sealed_secret = 'x', key_id = 'k1' WHERE id = 'whs_a'`).rejects.toThrow(/webhook_secrets_one_form_check/);
    } finally {
      await sql.end();
      await rm(old, { recursive: true, force: true });
      await database.drop();
    }
  });
});
