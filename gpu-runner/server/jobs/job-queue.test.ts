import { describe, expect, it } from 'vitest';
import { JobRequest } from '../../../contract/index.ts';
import { JobQueue, type JobRecord } from './job-queue.ts';

function request(jobId: string, attempt = 1): JobRequest {
  return JobRequest.parse({
    job_id: jobId,
    kind: 'generation',
    attempt,
    events_url: 'http://127.0.0.1:9/internal/runner/events',
    lease_seconds: 60,
    payload: {
      weights: { format: 'lidb', dtype: 'fp16', source: { data_base64: 'AA==', sha256: '0'.repeat(64), byte_size: 1 } },
      base_model_id: 'm',
      params: { prompt: 'a [V] face' },
    },
  });
}

/** A queue whose jobs end when the test says so. */
function controlledQueue(options: { concurrency?: number; capacity?: number; retentionMs?: number; now?: () => number } = {}) {
  const finishers = new Map<string, () => void>();
  const started: string[] = [];
  const queue: JobQueue = new JobQueue({
    concurrency: options.concurrency ?? 1,
    capacity: options.capacity ?? 2,
    retentionMs: options.retentionMs ?? 60_000,
    ...(options.now ? { now: options.now } : {}),
    run: (record: JobRecord) =>
      new Promise<void>((resolve) => {
        started.push(record.id);
        finishers.set(record.id, () => {
          queue.finish(record, 'succeeded');
          resolve();
        });
      }),
  });
  const finish = async (id: string) => {
    finishers.get(id)?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { queue, started, finish };
}

describe('JobQueue', () => {
  it('runs as many jobs as slots, queues up to capacity, then reports full', async () => {
    const { queue, started, finish } = controlledQueue({ concurrency: 1, capacity: 2 });
    expect(queue.submit(request('a')).kind).toBe('accepted');
    expect(queue.submit(request('b')).kind).toBe('accepted');
    expect(queue.submit(request('c')).kind).toBe('accepted');
    const full = queue.submit(request('d'));
    expect(full.kind).toBe('full');
    if (full.kind === 'full') expect(full.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(started).toEqual(['a']);
    await finish('a');
    expect(started).toEqual(['a', 'b']);
    expect(queue.submit(request('d')).kind).toBe('accepted');
  });

  it('accepts a job id once; a re-dispatch while it is here updates the attempt, after it ended runs it again', async () => {
    const { queue, started, finish } = controlledQueue();
    queue.submit(request('a'));
    expect(queue.submit(request('a')).kind).toBe('duplicate');
    expect(queue.submit(request('a', 2)).kind).toBe('duplicate');
    expect(queue.get('a')?.attempt).toBe(2);
    await finish('a');
    expect(queue.submit(request('a', 2)).kind).toBe('duplicate');
    expect(queue.submit(request('a', 3)).kind).toBe('accepted');
    expect(started).toEqual(['a', 'a']);
  });

  it('cancels a queued job at once and asks a running one to stop', () => {
    const { queue } = controlledQueue();
    const running = queue.submit(request('a'));
    queue.submit(request('b'));
    expect(queue.cancel('b').outcome).toBe('canceled');
    expect(queue.depth).toBe(0);
    expect(queue.cancel('a').outcome).toBe('canceling');
    if (running.kind === 'accepted') expect(running.record.controller.signal.reason).toBe('canceled');
    expect(queue.cancel('zzz').outcome).toBe('unknown');
  });

  it('on close, refuses new jobs and returns the ones that had not started', () => {
    const { queue } = controlledQueue();
    queue.submit(request('a'));
    queue.submit(request('b'));
    expect(queue.close().map((record) => record.id)).toEqual(['b']);
    expect(queue.submit(request('c')).kind).toBe('closed');
  });

  it('forgets finished jobs after the retention period', async () => {
    let now = 1_000;
    const { queue, finish } = controlledQueue({ retentionMs: 100, now: () => now });
    queue.submit(request('a'));
    await finish('a');
    expect(queue.get('a')?.status).toBe('succeeded');
    now += 101;
    expect(queue.get('a')).toBeUndefined();
  });

  it('estimates Retry-After from the mean job time', async () => {
    let now = 0;
    const { queue, finish } = controlledQueue({ concurrency: 1, capacity: 0, now: () => now });
    queue.submit(request('a'));
    now += 30_000;
    await finish('a');
    queue.submit(request('b'));
    const full = queue.submit(request('c'));
    expect(full).toEqual({ kind: 'full', retryAfterSeconds: 30 });
  });
});
