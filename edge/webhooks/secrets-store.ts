import { and, asc, desc, eq, gt, isNotNull, isNull, ne, or, sql } from 'drizzle-orm';
import { webhookSecrets } from '../../db/schema/webhooks.ts';
import type { Env } from '../env.ts';
import { parseKeyring, SealingConfigError, UnsealError, type Keyring } from '../lib/sealing.ts';
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

const keyrings = new Map<string, Promise<Keyring>>();

/** The key-encryption keys from the `WEBHOOK_SEALING_KEYS` Worker secret (imported once per isolate). */
export function webhookKeyringFromEnv(env: Pick<Env, 'WEBHOOK_SEALING_KEYS'>): Promise<Keyring> {
  const spec = env.WEBHOOK_SEALING_KEYS;
  if (!spec) return Promise.reject(new SealingConfigError('WEBHOOK_SEALING_KEYS is not set: webhook signing secrets are sealed with it (edge/webhooks/README.md)'));
  let keyring = keyrings.get(spec);
  if (!keyring) {
    keyring = parseKeyring(spec, 'WEBHOOK_SEALING_KEYS');
    keyrings.set(spec, keyring);
    keyring.catch(() => keyrings.delete(spec));
  }
  return keyring;
}

/** Additional data of a sealed secret: it opens on its own row only. */
const sealContext = (row: { id: string; tenantId: string }) => `webhook_secrets/${row.id}/${row.tenantId}`;

type SecretRow = Pick<typeof webhookSecrets.$inferSelect, 'id' | 'tenantId' | 'secret' | 'sealedSecret' | 'keyId' | 'createdAt' | 'expiresAt'>;

async function openSecret(keyring: Keyring, row: SecretRow): Promise<string> {
  // A row from before sealing, until the re-seal step reaches it.
  if (row.secret !== null) return row.secret;
  return keyring.open({ keyId: row.keyId!, sealed: row.sealedSecret! }, sealContext(row));
}

async function newSealedRow(keyring: Keyring, tenantId: string, now: Date) {
  const id = newSecretId();
  const { keyId, sealed } = await keyring.seal(generateWebhookSecret(), sealContext({ id, tenantId }));
  return { id, tenantId, secret: null, sealedSecret: sealed, keyId, createdAt: now };
}

/** Live secrets, newest first: the ones every delivery is signed with. */
export async function liveWebhookSecrets(db: WebhookDb, keyring: Keyring, tenantId: string, now: Date): Promise<WebhookSecretRecord[]> {
  const rows = await db
    .select(SECRET_COLUMNS)
    .from(webhookSecrets)
    .where(and(eq(webhookSecrets.tenantId, tenantId), or(isNull(webhookSecrets.expiresAt), gt(webhookSecrets.expiresAt, now))))
    // The current secret is the one without an expiry; rotated-out ones follow, most recent first.
    .orderBy(sql`${webhookSecrets.expiresAt} IS NULL DESC`, desc(webhookSecrets.createdAt), desc(webhookSecrets.id));
  return Promise.all(rows.map((row) => toRecord(keyring, row)));
}

const SECRET_COLUMNS = {
  id: webhookSecrets.id,
  tenantId: webhookSecrets.tenantId,
  secret: webhookSecrets.secret,
  sealedSecret: webhookSecrets.sealedSecret,
  keyId: webhookSecrets.keyId,
  createdAt: webhookSecrets.createdAt,
  expiresAt: webhookSecrets.expiresAt,
};

/** The tenant's live secrets, creating the first one when the tenant has none yet. */
export async function ensureWebhookSecrets(db: WebhookDb, keyring: Keyring, tenantId: string, now: Date): Promise<WebhookSecretRecord[]> {
  const live = await liveWebhookSecrets(db, keyring, tenantId, now);
  if (live.length > 0) return live;
  // Serialize first-secret creation per tenant so two concurrent first deliveries do not mint two unrelated secrets.
  return db.transaction(async (tx) => {
    await lockTenantSecrets(tx, tenantId);
    const again = await liveWebhookSecrets(tx, keyring, tenantId, now);
    if (again.length > 0) return again;
    const [created] = await tx.insert(webhookSecrets).values(await newSealedRow(keyring, tenantId, now)).returning();
    return [await toRecord(keyring, created!)];
  });
}

/**
 * Rotation: a new secret becomes the first signature at once; every older live secret keeps signing until
 * `now + overlapSeconds` (0 revokes them immediately, for a leaked secret).
 */
export async function rotateWebhookSecret(
  db: WebhookDb,
  keyring: Keyring,
  tenantId: string,
  now: Date,
  overlapSeconds = DEFAULT_ROTATION_OVERLAP_SECONDS,
): Promise<{ created: WebhookSecretRecord; previousExpireAt: Date }> {
  if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_ROTATION_OVERLAP_SECONDS) {
    throw new RangeError(`overlap must be an integer between 0 and ${MAX_ROTATION_OVERLAP_SECONDS} seconds`);
  }
  const previousExpireAt = new Date(now.getTime() + overlapSeconds * 1000);
  const sealed = await newSealedRow(keyring, tenantId, now);
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
    const [created] = await tx.insert(webhookSecrets).values(sealed).returning();
    return { created: await toRecord(keyring, created!), previousExpireAt };
  });
}

async function lockTenantSecrets(tx: WebhookDb, tenantId: string): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`webhook_secrets:${tenantId}`}))`);
}

async function toRecord(keyring: Keyring, row: SecretRow): Promise<WebhookSecretRecord> {
  return { id: row.id, secret: await openSecret(keyring, row), createdAt: row.createdAt, expiresAt: row.expiresAt };
}

export type ResealReport = {
  /** Rows moved this call: clear ones sealed, and sealed ones moved to the active key. */
  resealed: number;
  /** Rows still clear or under another key after this call (more than one batch, or keys missing below). */
  remaining: number;
  /** Rows sealed under a key the keyring lacks, by key id: left untouched; put the key back to move them. */
  missingKeys: Record<string, number>;
};

/** Rows per call; the cron calls every minute, so a large backlog drains over a few minutes. */
export const RESEAL_BATCH = 200;

/**
 * The re-seal step: seals rows still in clear and moves rows sealed under an older key to the active one. Nothing is
 * lost: a row's clear value (or old sealed value) is replaced in the same UPDATE that writes the new sealed value,
 * only after the new value was opened again and matched, and only if the row still holds what was read (a
 * concurrent rotation or re-seal wins and this row is left for the next call). Run by the cron and by
 * `POST /v1/admin/webhook-secrets/reseal`.
 */
export async function resealWebhookSecrets(db: WebhookDb, keyring: Keyring, limit = RESEAL_BATCH): Promise<ResealReport> {
  const stale = or(isNotNull(webhookSecrets.secret), ne(webhookSecrets.keyId, keyring.activeKeyId));
  const rows = await db.select(SECRET_COLUMNS).from(webhookSecrets).where(stale).orderBy(asc(webhookSecrets.createdAt)).limit(limit);
  let resealed = 0;
  const missingKeys: Record<string, number> = {};
  for (const row of rows) {
    let plain: string;
    try {
      plain = await openSecret(keyring, row);
    } catch (error) {
      if (!(error instanceof UnsealError)) throw error;
      missingKeys[error.keyId] = (missingKeys[error.keyId] ?? 0) + 1;
      continue;
    }
    const next = await keyring.seal(plain, sealContext(row));
    if ((await keyring.open(next, sealContext(row))) !== plain) throw new Error(`re-sealing webhook secret ${row.id} did not round-trip`);
    const unchanged =
      row.secret !== null
        ? eq(webhookSecrets.secret, row.secret)
        : and(eq(webhookSecrets.sealedSecret, row.sealedSecret!), eq(webhookSecrets.keyId, row.keyId!));
    const moved = await db
      .update(webhookSecrets)
      .set({ secret: null, sealedSecret: next.sealed, keyId: next.keyId })
      .where(and(eq(webhookSecrets.id, row.id), unchanged))
      .returning({ id: webhookSecrets.id });
    resealed += moved.length;
  }
  const [left] = await db.select({ n: sql<number>`count(*)::int` }).from(webhookSecrets).where(stale);
  return { resealed, remaining: left?.n ?? 0, missingKeys };
}
