import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import { webhookSecrets } from '../../db/schema/webhooks.ts';
import type { WebhookDb } from './db.ts';
import { generateWebhookSecret } from './secret.ts';

/**
 * How long a rotated-out secret keeps signing by default: a day gives a receiver time to deploy the new secret, and
 * every attempt made meanwhile verifies with either key.
 */
export const DEFAULT_ROTATION_OVERLAP_SECONDS = 24 * 3600;
/** A longer overlap would keep a possibly leaked secret valid for too long. */
export const MAX_ROTATION_OVERLAP_SECONDS = 7 * 24 * 3600;

export interface WebhookSecretRecord {
  id: string;
  secret: string;
  createdAt: Date;
  expiresAt: Date | null;
}

function newSecretId(): string {
  return `whs_${crypto.randomUUID().replaceAll('-', '')}`;
}

/** Live secrets, newest first: the ones every delivery is signed with. */
export async function liveWebhookSecrets(db: WebhookDb, tenantId: string, now: Date): Promise<WebhookSecretRecord[]> {
  return db
    .select({ id: webhookSecrets.id, secret: webhookSecrets.secret, createdAt: webhookSecrets.createdAt, expiresAt: webhookSecrets.expiresAt })
    .from(webhookSecrets)
    .where(and(eq(webhookSecrets.tenantId, tenantId), or(isNull(webhookSecrets.expiresAt), gt(webhookSecrets.expiresAt, now))))
    // The current secret is the one without an expiry; rotated-out ones follow, most recent first.
    .orderBy(sql`${webhookSecrets.expiresAt} IS NULL DESC`, desc(webhookSecrets.createdAt), desc(webhookSecrets.id));
}

/** The tenant's live secrets, creating the first one when the tenant has none yet. */
export async function ensureWebhookSecrets(db: WebhookDb, tenantId: string, now: Date): Promise<WebhookSecretRecord[]> {
  const live = await liveWebhookSecrets(db, tenantId, now);
  if (live.length > 0) return live;
  // Serialize first-secret creation per tenant so two concurrent first deliveries do not mint two unrelated secrets.
  return db.transaction(async (tx) => {
    await lockTenantSecrets(tx, tenantId);
    const again = await liveWebhookSecrets(tx, tenantId, now);
    if (again.length > 0) return again;
    const [created] = await tx
      .insert(webhookSecrets)
      .values({ id: newSecretId(), tenantId, secret: generateWebhookSecret(), createdAt: now })
      .returning();
    return [toRecord(created!)];
  });
}

/**
 * Rotation: a new secret becomes the first signature at once; every older live secret keeps signing until
 * `now + overlapSeconds` (0 revokes them immediately, for a leaked secret).
 */
export async function rotateWebhookSecret(
  db: WebhookDb,
  tenantId: string,
  now: Date,
  overlapSeconds = DEFAULT_ROTATION_OVERLAP_SECONDS,
): Promise<{ created: WebhookSecretRecord; previousExpireAt: Date }> {
  if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_ROTATION_OVERLAP_SECONDS) {
    throw new RangeError(`overlap must be an integer between 0 and ${MAX_ROTATION_OVERLAP_SECONDS} seconds`);
  }
  const previousExpireAt = new Date(now.getTime() + overlapSeconds * 1000);
  return db.transaction(async (tx) => {
    await lockTenantSecrets(tx, tenantId);
    await tx
      .update(webhookSecrets)
      .set({ expiresAt: previousExpireAt })
      .where(
        and(
          eq(webhookSecrets.tenantId, tenantId),
          or(isNull(webhookSecrets.expiresAt), gt(webhookSecrets.expiresAt, previousExpireAt)),
        ),
      );
    const [created] = await tx
      .insert(webhookSecrets)
      .values({ id: newSecretId(), tenantId, secret: generateWebhookSecret(), createdAt: now })
      .returning();
    return { created: toRecord(created!), previousExpireAt };
  });
}

async function lockTenantSecrets(tx: WebhookDb, tenantId: string): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`webhook_secrets:${tenantId}`}))`);
}

function toRecord(row: typeof webhookSecrets.$inferSelect): WebhookSecretRecord {
  return { id: row.id, secret: row.secret, createdAt: row.createdAt, expiresAt: row.expiresAt };
}
