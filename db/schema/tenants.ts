import { sql } from 'drizzle-orm';
import { check, index, pgEnum, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

export const apiKeyRole = pgEnum('api_key_role', ['tenant', 'admin']);

export const tenants = pgTable(
  'tenants',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  () => [],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    /** Null only for admin keys that are not tied to a tenant. */
    tenantId: text('tenant_id').references(() => tenants.id, { onDelete: 'cascade' }),
    role: apiKeyRole('role').notNull(),
    name: text('name').notNull().default(''),
    /** Hex SHA-256 of the whole key; the key itself is shown once and never stored. */
    keyHash: text('key_hash').notNull(),
    /** The first characters of the key, so a person can recognise it in a list. */
    displayPrefix: text('display_prefix').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('api_keys_key_hash_idx').on(t.keyHash),
    index('api_keys_tenant_idx').on(t.tenantId, t.id),
    check('api_keys_tenant_role_check', sql`${t.role} = 'admin' OR ${t.tenantId} IS NOT NULL`),
  ],
);
