// Events waiting for the edge's acknowledgement, one JSON file each, so a brief edge outage or a restart loses
// nothing. Files are written to a temporary name, fsynced and renamed: a crash leaves either the whole
// event or no event, never half of one.
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { RunnerEvent } from '../../../contract/index.ts';
import type { Logger } from '../log.ts';

const StoredEntry = z.object({
  seq: z.number().int().min(0),
  events_url: z.url(),
  /** Entries with the same key supersede each other while undelivered (progress of one job). */
  coalesce_key: z.string().optional(),
  enqueued_at: z.iso.datetime(),
  event: RunnerEvent,
});

export type OutboxEntry = {
  readonly seq: number;
  readonly eventsUrl: string;
  readonly coalesceKey: string | undefined;
  readonly enqueuedAt: string;
  readonly event: RunnerEvent;
  /**
   * The event's JSON as written to disk, kept so delivery sends these bytes instead of serializing the event again
   * (a personalization's `succeeded` carries its weight files: 0.77 MB on the world pack). Absent for entries loaded
   * from disk at start; the sender serializes those.
   */
  readonly body?: string;
  readonly fileName: string;
};

const ENTRY_FILE = /^(\d{12})-[A-Za-z0-9_-]+\.json$/;
const SEQ_WIDTH = 12;

export class Outbox {
  private readonly entries = new Map<number, OutboxEntry>();
  private nextSeq = 0;
  private readonly pendingDir: string;
  private readonly deadDir: string;
  private readonly tmpDir: string;

  private constructor(
    dir: string,
    private readonly log: Logger,
  ) {
    this.pendingDir = join(dir, 'pending');
    this.deadDir = join(dir, 'dead');
    this.tmpDir = join(dir, 'tmp');
  }

  /** Opens the outbox in `dir`, dropping half-written files and loading every pending event in order. */
  static async open(dir: string, log: Logger): Promise<Outbox> {
    const outbox = new Outbox(dir, log);
    await outbox.load();
    return outbox;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The oldest pending entry that is not `excluded`. */
  next(excluded?: ReadonlySet<number>): OutboxEntry | undefined {
    for (const entry of this.entries.values()) {
      if (!excluded?.has(entry.seq)) return entry;
    }
    return undefined;
  }

  pending(): OutboxEntry[] {
    return [...this.entries.values()];
  }

  /**
   * Persists an event; resolves once it is durable on disk. Undelivered entries with the same coalesce key, or with
   * the key it `supersedes` (and not in `inFlight`), are dropped: the edge needs only the newest progress of a job,
   * and none once the job has ended.
   */
  async add(
    eventsUrl: string,
    event: RunnerEvent,
    options: { coalesceKey?: string; supersedes?: string; inFlight?: ReadonlySet<number> } = {},
  ): Promise<OutboxEntry> {
    const seq = this.nextSeq++;
    const fileName = `${String(seq).padStart(SEQ_WIDTH, '0')}-${safeName(event.event_id)}.json`;
    const head: Omit<z.infer<typeof StoredEntry>, 'event'> = {
      seq,
      events_url: eventsUrl,
      ...(options.coalesceKey ? { coalesce_key: options.coalesceKey } : {}),
      enqueued_at: new Date().toISOString(),
    };
    // The event is serialized once: the file is the stored entry with that text as its last member `event` (the same
    // JSON as serializing the whole entry), and the sender posts the same text.
    const body = JSON.stringify(event);
    const content = `${JSON.stringify(head).slice(0, -1)},"event":${body}}`;
    await writeFileAtomically(join(this.tmpDir, fileName), join(this.pendingDir, fileName), content);
    const entry: OutboxEntry = {
      seq,
      eventsUrl,
      coalesceKey: options.coalesceKey,
      enqueuedAt: head.enqueued_at,
      event,
      body,
      fileName,
    };
    // `supersedes`: a final event makes the job's undelivered progress pointless (the edge would mark it stale).
    const dropKey = options.coalesceKey ?? options.supersedes;
    if (dropKey) {
      for (const older of [...this.entries.values()]) {
        if (older.coalesceKey === dropKey && !options.inFlight?.has(older.seq)) await this.remove(older);
      }
    }
    this.entries.set(seq, entry);
    return entry;
  }

  /** Forgets an acknowledged (or superseded) entry. */
  async remove(entry: OutboxEntry): Promise<void> {
    this.entries.delete(entry.seq);
    await rm(join(this.pendingDir, entry.fileName), { force: true });
  }

  /** Moves an entry the edge refused for good to `dead/`, where an operator can inspect and replay it. */
  async deadLetter(entry: OutboxEntry, reason: string): Promise<void> {
    this.entries.delete(entry.seq);
    await mkdir(this.deadDir, { recursive: true });
    await rename(join(this.pendingDir, entry.fileName), join(this.deadDir, entry.fileName));
    this.log.error('event dead-lettered', { job_id: entry.event.job_id, event_id: entry.event.event_id, reason });
  }

  private async load(): Promise<void> {
    await mkdir(this.pendingDir, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    const names = (await readdir(this.pendingDir)).filter((name) => ENTRY_FILE.test(name)).sort();
    let maxSeq = -1;
    for (const fileName of names) {
      const path = join(this.pendingDir, fileName);
      let stored: z.infer<typeof StoredEntry>;
      try {
        stored = StoredEntry.parse(JSON.parse(await readFile(path, 'utf8')));
      } catch (error) {
        // Only whole files are ever renamed in, so this is damage from outside; keep it aside, do not loop on it.
        this.log.error('unreadable outbox entry moved aside', { file: fileName, error });
        await mkdir(this.deadDir, { recursive: true });
        await rename(path, join(this.deadDir, `${fileName}.unreadable`));
        continue;
      }
      maxSeq = Math.max(maxSeq, stored.seq);
      this.entries.set(stored.seq, {
        seq: stored.seq,
        eventsUrl: stored.events_url,
        coalesceKey: stored.coalesce_key,
        enqueuedAt: stored.enqueued_at,
        event: stored.event,
        fileName,
      });
    }
    this.nextSeq = maxSeq + 1;
    if (this.entries.size > 0) this.log.info('outbox replaying pending events', { pending: this.entries.size });
  }
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

async function writeFileAtomically(tmpPath: string, finalPath: string, content: string): Promise<void> {
  const handle = await open(tmpPath, 'w');
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmpPath, finalPath);
  } catch (error) {
    await unlink(tmpPath).catch(() => undefined);
    throw error;
  }
}
