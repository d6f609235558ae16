// The steps of a production deployment that talk to the database or make secrets (docs/deploy.md), as one CLI:
//   npm run prod -- migrate        applies the committed migrations to DATABASE_URL (only those it lacks)
//   npm run prod -- admin-key      mints an admin API key in DATABASE_URL and prints it (stored hashed: shown once)
//   npm run prod -- sealing-key ID prints a fresh WEBHOOK_SEALING_KEYS entry "ID:base64(32 bytes)"
//   npm run prod -- runner-secret  prints a fresh RUNNER_SECRET (48 random bytes, base64url)
// DATABASE_URL is the database's own URL (not Hyperdrive's): run these from a machine that can reach it.
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { applyMigrations } from '../db/migrate.ts';
import * as schema from '../db/schema.ts';
import { generateApiKey, hashApiKey } from '../edge/lib/api-keys.ts';
import { newId } from '../edge/lib/ids.ts';
import { generateSealingKey } from '../edge/lib/sealing.ts';

/** 48 bytes: well above the contract's 32-character minimum for RUNNER_SECRET once base64url-encoded (64 chars). */
const RUNNER_SECRET_BYTES = 48;

function fail(message: string): never {
  process.stderr.write(`prod: ${message}\n`);
  process.exit(2);
}

function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) fail('set DATABASE_URL to the production database (postgres://user:password@host:5432/db)');
  return url;
}

async function mintAdminKey(url: string, name: string): Promise<string> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const { key, displayPrefix } = generateApiKey('admin');
    await drizzle(client, { schema }).insert(schema.apiKeys).values({ id: newId('apiKey'), tenantId: null, role: 'admin', name, keyHash: await hashApiKey(key), displayPrefix });
    return key;
  } finally {
    await client.end();
  }
}

const [command, argument] = process.argv.slice(2);
switch (command) {
  case 'migrate':
    await applyMigrations(databaseUrl());
    process.stdout.write('migrations applied\n');
    break;
  case 'admin-key':
    process.stdout.write(`${await mintAdminKey(databaseUrl(), argument ?? 'production admin')}\n`);
    break;
  case 'sealing-key':
    process.stdout.write(`${generateSealingKey(argument ?? 'k1')}\n`);
    break;
  case 'runner-secret':
    process.stdout.write(`${randomBytes(RUNNER_SECRET_BYTES).toString('base64url')}\n`);
    break;
  default:
    fail(`unknown command "${command ?? ''}": migrate, admin-key [name], sealing-key [id], runner-secret`);
}
