// Objects written to R2 before the rows that point at them: the write holds no database connection (a pooled one held
// across it starved the pool: bench/RESULTS.md) and a row never points at an object that is not there. The rows then
// commit in one short transaction, and the objects are removed again unless they did, so a failed request leaves
// nothing in R2 either.
import type { Database, Transaction } from '../db/client.ts';

export type StagedObject = { key: string; bytes: Uint8Array; contentType: string; sha256: string };

/** Writes every object or none: when one write fails the others are removed and the failure is rethrown. */
export async function putObjects(bucket: R2Bucket, objects: readonly StagedObject[]): Promise<void> {
  const writes = await Promise.allSettled(
    objects.map((object) => bucket.put(object.key, object.bytes, { httpMetadata: { contentType: object.contentType }, sha256: object.sha256 })),
  );
  const failed = writes.find((write): write is PromiseRejectedResult => write.status === 'rejected');
  if (failed) {
    await removeObjects(bucket, objects.map((object) => object.key));
    throw failed.reason;
  }
}

export type CommitRows<T> = {
  /** Writes the rows that point at the objects; runs inside the transaction. */
  write: (tx: Transaction) => Promise<T>;
  /**
   * Which of the keys have committed rows, asked on a connection of its own, after the COMMIT's outcome was lost with
   * its connection (the server may have committed).
   */
  committedKeys: () => Promise<readonly string[]>;
};

/**
 * Commits the rows for objects already written under `keys`, or removes the objects. A failure before COMMIT was sent
 * committed nothing. A failed COMMIT is asked about: the objects without a row are removed; when even that cannot be
 * asked, the objects stay (no row points at them, nothing serves them) and are logged by key.
 */
export async function commitRowsOrRemove<T>(db: Database, bucket: R2Bucket, keys: readonly string[], rows: CommitRows<T>): Promise<T> {
  let committing = false;
  try {
    return await db.transaction(async (tx) => {
      const result = await rows.write(tx);
      committing = true;
      return result;
    });
  } catch (error) {
    const committed = committing ? await rows.committedKeys().catch(() => undefined) : [];
    if (committed === undefined) {
      console.error(JSON.stringify({ level: 'error', msg: 'upload failed at COMMIT and its outcome could not be read; objects kept', keys, error: String(error) }));
    } else {
      await removeObjects(bucket, keys.filter((key) => !committed.includes(key)));
    }
    throw error;
  }
}

/** Best effort: a removal that fails is logged (the request's own failure is what the caller reports). */
async function removeObjects(bucket: R2Bucket, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  try {
    await bucket.delete([...keys]);
  } catch (error) {
    console.error(JSON.stringify({ level: 'error', msg: 'staged objects could not be removed', keys, error: String(error) }));
  }
}
