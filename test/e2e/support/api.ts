// A small client of the public API for the end-to-end tests: bearer keys, JSON, and polling until a job settles.
import { randomUUID } from 'node:crypto';

export const TERMINAL = ['succeeded', 'failed', 'canceled'] as const;

export interface Job {
  id: string;
  status: string;
  attempts: number;
  progress: { step: number; total_steps: number | null };
  error: { code: string; message: string } | null;
  [field: string]: unknown;
}

export class Api {
  constructor(
    readonly baseUrl: string,
    readonly key: string,
  ) {}

  async request(method: string, path: string, init: { json?: unknown; body?: FormData | string; idempotent?: boolean } = {}): Promise<Response> {
    const headers = new Headers({ authorization: `Bearer ${this.key}` });
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    if (init.idempotent) headers.set('idempotency-key', randomUUID());
    return fetch(new URL(path, this.baseUrl), {
      method,
      headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      signal: AbortSignal.timeout(30_000),
    });
  }

  /** The JSON of a response that must have `status`; otherwise an error that shows what came back. */
  async expectJson<T = Record<string, unknown>>(method: string, path: string, status: number, init: Parameters<Api['request']>[2] = {}): Promise<T> {
    const response = await this.request(method, path, init);
    const text = await response.text();
    if (response.status !== status) throw new Error(`${method} ${path}: expected ${status}, got ${response.status}: ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  async bytes(path: string): Promise<{ status: number; bytes: Uint8Array; contentType: string | null }> {
    const response = await this.request('GET', path);
    return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()), contentType: response.headers.get('content-type') };
  }

  async uploadSubject(png: Uint8Array, name = 'e2e subject'): Promise<{ id: string; images: unknown[] }> {
    const form = new FormData();
    form.append('name', name);
    form.append('images', new Blob([png], { type: 'image/png' }), 'face.png');
    return this.expectJson('POST', '/v1/subjects', 201, { body: form, idempotent: true });
  }

  /** Polls a job until `done` holds (by default: a terminal status), up to `timeoutMs`. */
  async waitFor(path: string, done: (job: Job) => boolean = (job) => (TERMINAL as readonly string[]).includes(job.status), timeoutMs = 120_000): Promise<Job> {
    const deadline = Date.now() + timeoutMs;
    let last: Job | undefined;
    while (Date.now() < deadline) {
      last = await this.expectJson<Job>('GET', path, 200);
      if (done(last)) return last;
      await sleep(250);
    }
    throw new Error(`${path} did not reach the expected state within ${timeoutMs / 1000} s; last: ${JSON.stringify(last)}`);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` returns a value (not undefined), up to `timeoutMs`. */
export async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}
