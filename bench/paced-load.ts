// An open-loop load at a fixed request rate, requests evenly spaced: request i is due at start + i / rate, whatever
// happened to the ones before it. autocannon's overallRate sends each connection's share of a second back to back at
// the start of the second, so "100 requests/s on 10 connections" arrives as bursts of ten, and the p99 measures the
// burst. Latency here is taken from the moment a request was due, not the moment it left, so a generator or server that
// falls behind shows up in the tail instead of hiding it (coordinated omission, as wrk2 measures it).
// node:http with a keep-alive agent: the cheapest client in Node's own library, sharing the machine with the server.
import { Agent, request } from 'node:http';

export interface PacedLoad {
  readonly url: string;
  /** Requests a second, evenly spaced. */
  readonly rate: number;
  readonly durationS: number;
  /** Sockets the agent may open; a request due while all are busy waits for one (and that wait counts). */
  readonly maxSockets: number;
  readonly timeoutMs: number;
  readonly method?: string;
  readonly body?: Buffer;
  /** Headers of request i (an API key per request, rotated). */
  readonly headers?: (index: number) => Record<string, string>;
}

/** The shape of autocannon's result that the edge bench reads, so both feed the same table. */
export interface LoadResult {
  readonly requests: { readonly total: number; readonly average: number };
  readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly statusCodeStats?: Record<string, { count: number }>;
  /** Requests that got no answer, by the socket error's code (ECONNRESET, …); timeouts are counted apart. */
  readonly errorCodes?: Record<string, number>;
}

/** The value at quantile q of sorted values (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export async function pacedLoad(load: PacedLoad): Promise<LoadResult> {
  if (!(load.rate > 0) || !(load.durationS > 0)) throw new RangeError(`paced load: rate and duration must be positive, got ${load.rate} and ${load.durationS}`);
  const agent = new Agent({ keepAlive: true, maxSockets: load.maxSockets });
  const target = new URL(load.url);
  const total = Math.round(load.rate * load.durationS);
  const intervalMs = 1000 / load.rate;
  const latencies: number[] = [];
  const statuses: Record<string, { count: number }> = {};
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  let timeouts = 0;
  let non2xx = 0;
  const inFlight = new Set<Promise<void>>();
  const countError = (error: NodeJS.ErrnoException) => {
    errors++;
    const code = error.code ?? error.name;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  };

  const send = (index: number, dueAt: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const finish = (status?: number) => {
        latencies.push(performance.now() - dueAt);
        if (status !== undefined) {
          statuses[status] = { count: (statuses[status]?.count ?? 0) + 1 };
          if (status < 200 || status > 299) non2xx++;
        }
        resolve();
      };
      const req = request(
        { host: target.hostname, port: target.port, path: target.pathname + target.search, method: load.method ?? 'GET', agent, headers: load.headers?.(index) ?? {} },
        (res) => {
          res.resume();
          res.on('end', () => finish(res.statusCode));
          res.on('error', (error: NodeJS.ErrnoException) => {
            countError(error);
            finish();
          });
        },
      );
      let timedOut = false;
      req.setTimeout(load.timeoutMs, () => {
        timedOut = true;
        timeouts++;
        req.destroy(new Error('timeout'));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (!timedOut) countError(error);
        finish();
      });
      req.end(load.body);
    });

  const started = performance.now();
  await new Promise<void>((done) => {
    let next = 0;
    const tick = () => {
      // Every request already due leaves now (timers fire late on a busy machine; their lateness is in the latency).
      while (next < total && started + next * intervalMs <= performance.now()) {
        const pending = send(next, started + next * intervalMs);
        inFlight.add(pending);
        void pending.then(() => inFlight.delete(pending));
        next++;
      }
      if (next < total) setTimeout(tick, Math.max(0, started + next * intervalMs - performance.now()));
      else done();
    };
    tick();
  });
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - started) / 1000;
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    requests: { total: latencies.length, average: latencies.length / elapsedS },
    latency: { p50: round(quantile(sorted, 0.5)), p90: round(quantile(sorted, 0.9)), p99: round(quantile(sorted, 0.99)), max: round(sorted.at(-1) ?? 0) },
    errors,
    timeouts,
    non2xx,
    statusCodeStats: statuses,
    errorCodes,
  };
}
