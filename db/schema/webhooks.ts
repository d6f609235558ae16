import { sql } from 'drizzle-orm';
import { check, index, integer, pgEnum, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { jobs } from './jobs.ts';
import { tenants } from './tenants.ts';

/** pending → delivered | dead; a replay moves a row back to pending. */
export const webhookDeliveryState = pgEnum('webhook_delivery_state', ['pending', 'delivered', 'dead']);

/**
 * One row per event sent to one URL. The id is the Standard Webhooks `webhook-id`: the same on every attempt and replay,
 * so receivers can deduplicate. The body is stored as the exact bytes we sign, so every attempt signs the same content.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    jobId: text('job_id').references(() => jobs.id, { onDelete: 'set null' }),
    eventType: text('event_type').notNull(),
    url: text('url').notNull(),
    body: text('body').notNull(),
    state: webhookDeliveryState('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** Anchors the retry schedule's minimum span; reset by a replay. */
    firstAttemptAt: timestamp('first_attempt_at', { withTimezone: true }),
    lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true }),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
    /** HTTP status of the last attempt; null when it never got a response (network error, timeout, refused target). */
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    /**
     * The token carried by the one queue message allowed to make the next attempt. Claiming an attempt clears it, so a
     * duplicated or stale queue message (at-least-once delivery, a replay racing a retry) can never POST twice.
     */
    dispatchToken: text('dispatch_token'),
    replayCount: integer('replay_count').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    deadAt: timestamp('dead_at', { withTimezone: true }),
  },
  (t) => [
    // GET /v1/webhooks/deliveries (newest first, cursor on created_at + id), optionally by state (dead letters).
    index('webhook_deliveries_tenant_created_idx').on(t.tenantId, t.createdAt, t.id),
    index('webhook_deliveries_tenant_state_created_idx').on(t.tenantId, t.state, t.createdAt, t.id),
    index('webhook_deliveries_job_idx').on(t.jobId),
    // The sweeper only looks at pending rows whose attempt is overdue.
    index('webhook_deliveries_pending_next_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.state} = 'pending'`),
    check('webhook_deliveries_attempts_check', sql`${t.attempts} >= 0`),
  ],
);

/**
 * Per-tenant signing secrets (`whsec_…`). Rotation adds a new row and gives the previous ones an `expires_at`; until
 * then deliveries carry one signature per live secret, so the receiver can switch keys without losing events.
 * Signing needs the secret itself (unlike API keys, which are only ever compared by hash), so it is stored sealed
 * under a key-encryption key from a Worker secret (edge/lib/sealing.ts), with the id of that key beside it.
 */
export const webhookSecrets = pgTable(
  'webhook_secrets',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /**
     * The clear secret of a row written before sealing existed, kept until the re-seal step replaces it (in the same
     * update that writes `sealed_secret`); null on every row written since. A later migration drops the column.
     */
    secret: text('secret'),
    /** base64(IV ‖ AES-GCM ciphertext ‖ tag) of the `whsec_` secret. */
    sealedSecret: text('sealed_secret'),
    /** Which key-encryption key sealed it (`WEBHOOK_SEALING_KEYS`), so the keys can rotate. */
    keyId: text('key_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
  },
  (t) => [
    index('webhook_secrets_tenant_created_idx').on(t.tenantId, t.createdAt),
    // Exactly one form per row: clear (legacy) or sealed with its key id.
    check('webhook_secrets_one_form_check', sql`(${t.secret} IS NULL) <> (${t.sealedSecret} IS NULL) AND (${t.sealedSecret} IS NULL) = (${t.keyId} IS NULL)`),
  ],
);
