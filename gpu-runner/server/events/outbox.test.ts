import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunnerEvent } from '../../../contract/index.ts';
import { createLogger } from '../log.ts';
import { Outbox } from './outbox.ts';

const EVENTS_URL = 'http://127.0.0.1:9/internal/runner/events';
const log = createLogger({ level: 'silent' });
let counter = 0;

function event(type: 'started' | 'progress', jobId = 'job_1', step = 1): RunnerEvent {
  const envelope = { event_id: `evt_${++counter}`, job_id: jobId, attempt: 1, occurred_at: new Date().toISOString() };
  return type === 'started' ? { ...envelope, type } : { ...envelope, type, step, total_steps: 10 };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hdb-outbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Outbox', () => {
  it('keeps events across reopening, in the order they were added', async () => {
    const outbox = await Outbox.open(dir, log);
    const first = await outbox.add(EVENTS_URL, event('started'));
    const second = await outbox.add(EVENTS_URL, event('progress'));
    const reopened = await Outbox.open(dir, log);
    expect(reopened.pending().map((entry) => entry.event)).toEqual([first.event, second.event]);
    const third = await reopened.add(EVENTS_URL, event('progress', 'job_2'));
    expect(third.seq).toBeGreaterThan(second.seq);
  });

  it('writes the entry as one JSON document and keeps the event text the sender posts', async () => {
    const outbox = await Outbox.open(dir, log);
    const sent = event('progress');
    const entry = await outbox.add(EVENTS_URL, sent, { coalesceKey: 'progress:job_1' });
    expect(entry.body).toBe(JSON.stringify(sent));
    const file = await readFile(join(dir, 'pending', entry.fileName), 'utf8');
    expect(file).toBe(JSON.stringify({ seq: entry.seq, events_url: EVENTS_URL, coalesce_key: 'progress:job_1', enqueued_at: entry.enqueuedAt, event: sent }));
    // Loaded from disk, the sender serializes the event itself.
    const [reloaded] = (await Outbox.open(dir, log)).pending();
    expect(reloaded?.body).toBeUndefined();
    expect(reloaded?.event).toEqual(sent);
  });

  it('forgets acknowledged events on disk too', async () => {
    const outbox = await Outbox.open(dir, log);
    const entry = await outbox.add(EVENTS_URL, event('started'));
    await outbox.remove(entry);
    expect(await readdir(join(dir, 'pending'))).toEqual([]);
    expect((await Outbox.open(dir, log)).size).toBe(0);
  });

  it('keeps only the newest undelivered progress of a job, but never drops one being sent', async () => {
    const outbox = await Outbox.open(dir, log);
    const started = await outbox.add(EVENTS_URL, event('started'));
    const p1 = await outbox.add(EVENTS_URL, event('progress', 'job_1', 1), { coalesceKey: 'progress:job_1' });
    await outbox.add(EVENTS_URL, event('progress', 'job_2', 1), { coalesceKey: 'progress:job_2' });
    const p3 = await outbox.add(EVENTS_URL, event('progress', 'job_1', 3), { coalesceKey: 'progress:job_1', inFlight: new Set([p1.seq]) });
    expect(outbox.pending().map((entry) => entry.seq)).toContain(p1.seq);
    const p4 = await outbox.add(EVENTS_URL, event('progress', 'job_1', 4), { coalesceKey: 'progress:job_1' });
    const jobOne = outbox.pending().filter((entry) => entry.event.job_id === 'job_1');
    expect(jobOne.map((entry) => entry.seq)).toEqual([started.seq, p4.seq]);
    expect(jobOne.map((entry) => entry.seq)).not.toContain(p3.seq);
    expect(await readdir(join(dir, 'pending'))).toHaveLength(3);
  });

  it('drops the undelivered progress of a job when its final event is added', async () => {
    const outbox = await Outbox.open(dir, log);
    await outbox.add(EVENTS_URL, event('progress', 'job_1', 2), { coalesceKey: 'progress:job_1' });
    const other = await outbox.add(EVENTS_URL, event('progress', 'job_2', 2), { coalesceKey: 'progress:job_2' });
    const final = await outbox.add(EVENTS_URL, event('started', 'job_1'), { supersedes: 'progress:job_1' });
    expect(outbox.pending().map((entry) => entry.seq)).toEqual([other.seq, final.seq]);
  });

  it('moves unreadable files aside and drops half-written temporary files on open', async () => {
    const outbox = await Outbox.open(dir, log);
    await outbox.add(EVENTS_URL, event('started'));
    await writeFile(join(dir, 'pending', '000000000099-evt_broken.json'), '{"seq": 99, "event": ');
    await writeFile(join(dir, 'tmp', '000000000100-evt_half.json'), '{"seq"');
    const reopened = await Outbox.open(dir, log);
    expect(reopened.size).toBe(1);
    expect(await readdir(join(dir, 'dead'))).toEqual(['000000000099-evt_broken.json.unreadable']);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });

  it('dead-letters an entry the edge refused for good', async () => {
    const outbox = await Outbox.open(dir, log);
    const entry = await outbox.add(EVENTS_URL, event('started'));
    await outbox.deadLetter(entry, 'HTTP 422');
    expect(outbox.size).toBe(0);
    expect(await readdir(join(dir, 'dead'))).toEqual([entry.fileName]);
  });
});
